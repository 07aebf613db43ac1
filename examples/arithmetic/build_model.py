"""Builds the bundled model (examples/arithmetic/model) from scratch by self-refinement SFT.

    .venv/bin/python examples/arithmetic/build_model.py [--out DIR]

One run of `python -m aries_trainer sft --init_from_scratch` on train-split sums only. Half of the
rows are first answers ("Compute 68+29." -> "8+9=17, 6+2+1=9 #### 97"), some of them with a
plausible slip (noise), half are refinements: refine(x, previous) -> the right answer, where the
previous answer is wrong (a carry or a one-digit fact) or right. Training stops early on purpose: the model should get roughly half
of the first answers right, so that ARIES has something to improve. Deterministic: same machine,
same command, same weights (fixed seeds, one CPU thread). The trainer writes config.json,
pytorch_model.bin, the tokenizer files and onnx/model.onnx; this script then replaces the temporary
paths in config.json's lineage with what identifies the build.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRAINER_DIR = HERE.parents[1] / "engine" / "trainer"
sys.path.insert(0, str(TRAINER_DIR))
sys.path.insert(0, str(HERE))

from aries_trainer.refinement import load_template, render_refinement  # noqa: E402
from aries_trainer.tokenizer import write_tokenizer_files  # noqa: E402
from solutions import plausible_previous, plausible_wrong, worked  # noqa: E402
from task import Problem, problems  # noqa: E402

ARCHITECTURE = {"hidden_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 352,
                "max_position_embeddings": 256}
THREADS = 1  # measured faster than 2 on the 2-core machines, and a fixed count keeps the build bitwise reproducible
DATA_SEED = 7
STEPS = 350


@dataclass(frozen=True)
class Stage:
    name: str
    steps: int
    batch_size: int
    learning_rate: float
    refine_share: float  # share of rows that are refinements
    direct_noise: float = 0.15  # share of first-answer demonstrations that are wrong
    previous_wrong: float = 0.6  # share of refinement rows whose previous answer is wrong


STAGE = Stage("self-refinement-sft", steps=STEPS, batch_size=64, learning_rate=2e-3, refine_share=0.5)


def sft_rows(stage: Stage, stream, rng: random.Random, template: str) -> list[dict]:
    rows = []
    for _ in range(stage.steps * stage.batch_size):
        p: Problem = next(stream)
        if rng.random() < stage.refine_share:
            previous = plausible_previous(rng, p, wrong=rng.random() < stage.previous_wrong)
            prompt, completion = render_refinement(template, p.question, previous), worked(p)
        else:
            wrong = rng.random() < stage.direct_noise
            prompt, completion = p.question, plausible_wrong(rng, p) if wrong else worked(p)
        rows.append({"prompt": [{"role": "user", "content": prompt}], "completion": completion})
    return rows


def run_sft(tokenizer: Path, dataset: Path, out: Path, stage: Stage) -> None:
    cmd = [sys.executable, "-m", "aries_trainer", "sft", "--model_name_or_path", str(tokenizer), "--dataset_path", str(dataset),
           "--output_dir", str(out), "--overwrite_output_dir", "true", "--max_steps", str(stage.steps),
           "--per_device_train_batch_size", str(stage.batch_size), "--learning_rate", str(stage.learning_rate),
           "--lr_scheduler_type", "cosine", "--warmup_ratio", "0.05", "--num_threads", str(THREADS), "--seed", "0", "--max_length", "256",
           "--logging_steps", "50", "--export_onnx", "true", "--init_from_scratch", json.dumps(ARCHITECTURE)]
    env = {**os.environ, "PYTHONPATH": str(TRAINER_DIR), "OMP_NUM_THREADS": str(THREADS)}
    started = time.perf_counter()
    last: dict = {}
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8") as stderr:
        # The trainer's JSON lines arrive as it trains: show each logged step (progress on a CPU
        # build that takes many minutes), keep the last for the summary.
        with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                if not line.startswith('{"type": "log"'):
                    continue
                last = json.loads(line)
                print(f"  {stage.name} step {last.get('step')}/{stage.steps}: loss {last.get('loss', float('nan')):.3f}, "
                      f"token accuracy {last.get('mean_token_accuracy', float('nan')):.3f} "
                      f"({time.perf_counter() - started:.0f}s)", flush=True)
        if proc.returncode != 0:
            stderr.seek(0)
            raise SystemExit(f"build_model.py: stage {stage.name!r} failed (exit {proc.returncode}):\n{stderr.read()[-3000:]}")
    print(f"stage {stage.name}: {stage.steps} steps in {time.perf_counter() - started:.0f}s, "
          f"final loss {last.get('loss', float('nan')):.3f}, token accuracy {last.get('mean_token_accuracy', float('nan')):.3f}", flush=True)


def stable_lineage(model_dir: Path, dataset_hash: str) -> None:
    """The trainer records absolute temporary paths; keep what identifies the build instead."""
    path = model_dir / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["aries_lineage"] = {
        "base_model": None,
        "objective": "sft",
        "built_by": "examples/arithmetic/build_model.py",
        "stages": [{"name": STAGE.name, "steps": STAGE.steps, "batch_size": STAGE.batch_size, "learning_rate": STAGE.learning_rate,
                    "refine_share": STAGE.refine_share, "dataset_sha256": dataset_hash}],
    }
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def build(out: Path) -> Path:
    from aries_trainer.objectives import dataset_sha256

    template = load_template()
    stream = problems("train", seed=DATA_SEED, distinct=False)
    rng = random.Random(DATA_SEED)
    with tempfile.TemporaryDirectory(prefix="aries-build-") as tmp:
        work = Path(tmp)
        tokenizer = work / "tokenizer"
        tokenizer.mkdir()
        write_tokenizer_files(tokenizer)
        dataset = work / f"{STAGE.name}.jsonl"
        dataset.write_text("".join(json.dumps(r) + "\n" for r in sft_rows(STAGE, stream, rng, template)), encoding="utf-8")
        run_sft(tokenizer, dataset, out, STAGE)
        stable_lineage(out, dataset_sha256(str(dataset)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="Build the bundled tiny model by self-refinement SFT.")
    parser.add_argument("--out", type=Path, default=HERE / "model")
    args = parser.parse_args()
    started = time.perf_counter()
    build(args.out.resolve())
    print(f"built {args.out} in {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
