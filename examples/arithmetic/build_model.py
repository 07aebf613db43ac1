"""Builds the bundled model (examples/arithmetic/model) from scratch by self-refinement SFT, in two stages.

    .venv/bin/python examples/arithmetic/build_model.py [--out DIR]

Each stage is one run of `python -m aries_trainer sft` on train-split sums only.

1. "self-refinement-sft", from scratch (`--init_from_scratch`): half of the rows are first answers
   ("Compute 68+29." -> "8+9=17, 6+2+1=9 #### 97"), some of them with a plausible slip (noise),
   half are refinements: refine(x, previous) -> the right answer, where the previous answer is
   wrong (a carry or a one-digit fact) or right.
2. "check-and-fix", from stage 1's weights: almost all rows are refinements whose wrong previous
   answers carry the slip the stage-1 model makes most — an operand digit copied wrong from the
   question — and the target is always right; the few first-answer rows keep 30 % of such slips.
   The paper starts from an instruct model that already refines a little; this stage gives the
   bundled model that start: its refinement repairs more first answers than it breaks
   (docs/results.md, "The bundled model").

Training stops early on purpose: the model should get roughly half of the first answers right, so
that ARIES has something to improve. Deterministic: same machine, same command, same weights (fixed
seeds, one CPU thread). The trainer writes config.json, model.safetensors, the tokenizer files and
onnx/model.onnx; this script then replaces the temporary paths in config.json's lineage with what
identifies the build.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
TRAINER_DIR = HERE.parents[1] / "engine" / "trainer"
sys.path.insert(0, str(TRAINER_DIR))
sys.path.insert(0, str(HERE))

from aries_trainer.refinement import load_template, render_refinement  # noqa: E402
from aries_trainer.tokenizer import write_tokenizer_files  # noqa: E402
from solutions import copy_slip, plausible_wrong, worked  # noqa: E402
from task import Problem, problems  # noqa: E402

ARCHITECTURE = {"hidden_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 352,
                "max_position_embeddings": 256}
THREADS = 1  # measured faster than 2 on the 2-core machines, and a fixed count keeps the build bitwise reproducible
DATA_SEED = 7


@dataclass(frozen=True)
class Stage:
    name: str
    steps: int
    batch_size: int
    learning_rate: float
    refine_share: float  # share of rows that are refinements
    direct_noise: float = 0.15  # share of first-answer demonstrations that are wrong
    previous_wrong: float = 0.6  # share of refinement rows whose previous answer is wrong
    slip: str = "carry-or-fact"  # the wrong answers' kind: "carry-or-fact" (solutions.plausible_wrong) or "copy" (solutions.copy_slip)
    from_scratch: bool = False  # True: a new model (ARCHITECTURE); False: continue from the previous stage's weights


STAGES = (
    Stage("self-refinement-sft", steps=350, batch_size=64, learning_rate=2e-3, refine_share=0.5, from_scratch=True),
    Stage("check-and-fix", steps=100, batch_size=64, learning_rate=1e-3, refine_share=0.95, direct_noise=0.3, previous_wrong=0.4,
          slip="copy"),
)


def sft_rows(stage: Stage, stream, rng: random.Random, template: str) -> list[dict]:
    def wrong_answer(p: Problem) -> str:
        return copy_slip(rng, p) if stage.slip == "copy" else plausible_wrong(rng, p)

    rows = []
    for _ in range(stage.steps * stage.batch_size):
        p: Problem = next(stream)
        refine = rng.random() < stage.refine_share
        wrong = rng.random() < (stage.previous_wrong if refine else stage.direct_noise)
        answer = wrong_answer(p) if wrong else worked(p)
        if refine:  # refine(x, previous) -> the right answer
            prompt, completion = render_refinement(template, p.question, answer), worked(p)
        else:  # x -> a first answer, wrong as often as direct_noise says
            prompt, completion = p.question, answer
        rows.append({"prompt": [{"role": "user", "content": prompt}], "completion": completion})
    return rows


def run_sft(start: Path, dataset: Path, out: Path, stage: Stage) -> None:
    """One stage: from `start` (a tokenizer folder for a from-scratch stage, else the previous stage's model) into `out`."""
    cmd = [sys.executable, "-m", "aries_trainer", "sft", "--model_name_or_path", str(start), "--dataset_path", str(dataset),
           "--output_dir", str(out), "--overwrite_output_dir", "true", "--max_steps", str(stage.steps),
           "--per_device_train_batch_size", str(stage.batch_size), "--learning_rate", str(stage.learning_rate),
           "--lr_scheduler_type", "cosine", "--warmup_ratio", "0.05", "--num_threads", str(THREADS), "--seed", "0", "--max_length", "256",
           "--logging_steps", "50", "--export_onnx", "true"]
    if stage.from_scratch:
        cmd += ["--init_from_scratch", json.dumps(ARCHITECTURE)]
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


def stable_lineage(model_dir: Path, dataset_hashes: list[str], given: list[dict]) -> None:
    """The trainer records absolute temporary paths; keep what identifies the build instead.
    `given`: the lineage entries of stages taken from --stage1 rather than run here."""
    path = model_dir / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    ran = STAGES[len(given):]
    config["aries_lineage"] = {
        "base_model": None,
        "objective": "sft",
        "built_by": "examples/arithmetic/build_model.py",
        "stages": given + [{"name": st.name, "steps": st.steps, "batch_size": st.batch_size, "learning_rate": st.learning_rate,
                            "refine_share": st.refine_share, "direct_noise": st.direct_noise, "previous_wrong": st.previous_wrong,
                            "slip": st.slip, "dataset_sha256": digest} for st, digest in zip(ran, dataset_hashes)],
    }
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def stage_dataset(i: int, template: str, work: Path) -> Path:
    """Stage i's rows, written to work/<name>.jsonl; each stage draws its own problems and slips (seed DATA_SEED + i)."""
    stage = STAGES[i]
    rows = sft_rows(stage, problems("train", seed=DATA_SEED + i, distinct=False), random.Random(DATA_SEED + i), template)
    dataset = work / f"{stage.name}.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return dataset


def given_stage1_hash(template: str, work: Path) -> str:
    """sha256 of stage 1's rows, as the trainer records it in a model's lineage."""
    from aries_trainer.objectives import dataset_sha256

    return dataset_sha256(str(stage_dataset(0, template, work)))


def given_stage1(folder: Path, template: str, work: Path) -> list[dict]:
    """Checks that `folder` holds this recipe's stage 1 (its lineage names stage 1's rows) and returns that lineage entry."""
    try:
        recorded = json.loads((folder / "config.json").read_text(encoding="utf-8"))["aries_lineage"]["stages"][0]
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise SystemExit(f"build_model.py: --stage1 {folder}: no config.json with an aries_lineage stage ({exc}); "
                         "give the folder of a stage-1 build of this script") from exc
    expected = given_stage1_hash(template, work)
    if recorded.get("name") != STAGES[0].name or recorded.get("dataset_sha256") != expected:
        raise SystemExit(f"build_model.py: --stage1 {folder}: its lineage's first stage is {recorded.get('name')!r} on rows "
                         f"{recorded.get('dataset_sha256')}, not {STAGES[0].name!r} on {expected}; it was not built by this "
                         "recipe's stage 1")
    return [{**recorded, "weights": "given with --stage1"}]


def build(out: Path, stage1: Optional[Path] = None) -> Path:
    """Runs every stage in order into `out`; with `stage1`, starts from those weights (checked to be this
    recipe's stage 1) and runs the later stages only."""
    from aries_trainer.objectives import dataset_sha256

    template = load_template()
    hashes = []
    with tempfile.TemporaryDirectory(prefix="aries-build-") as tmp:
        work = Path(tmp)
        start = work / "start"  # what the next stage starts from: a tokenizer folder, or the given stage 1
        if stage1 is None:
            given: list[dict] = []
            start.mkdir()
            write_tokenizer_files(start)
        else:
            given = given_stage1(stage1, template, work)
            shutil.copytree(stage1, start)  # a copy: `out` may be the very folder it came from
        for i in range(len(given), len(STAGES)):
            dataset = stage_dataset(i, template, work)
            stage_out = out if i == len(STAGES) - 1 else work / STAGES[i].name
            run_sft(start, dataset, stage_out, STAGES[i])
            hashes.append(dataset_sha256(str(dataset)))
            start = stage_out
        stable_lineage(out, hashes, given)
    # Shipped without the slot-cache graph, to stay under 10 MB: the engine decodes with optimum's
    # graph until a trained round's export adds onnx/model_slots.onnx.
    (out / "onnx" / "model_slots.onnx").unlink(missing_ok=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="Build the bundled tiny model by self-refinement SFT (two stages).")
    parser.add_argument("--out", type=Path, default=HERE / "model")
    parser.add_argument("--stage1", type=Path, help="start from this stage-1 build instead of training stage 1 from scratch")
    args = parser.parse_args()
    started = time.perf_counter()
    build(args.out.resolve(), args.stage1.resolve() if args.stage1 else None)
    print(f"built {args.out} in {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
