"""Times ARIES DPO steps on a GPU with a ~0.5B Hugging Face model, through the trainer (transformers).

    PYTHONPATH=engine/trainer .venv/bin/python engine/bench/gpu/dpo_step.py --out DIR [--model HF_FOLDER] [--batch-sizes 8,32] [--steps 12]

The same step as the CPU benchmark (engine/bench/trainer.ts): sums as direct + refine rows (the
refinement template of engine/templates/refinement.json), the example project's DPO settings,
run by `aries_trainer.cli.main` (the code behind `python -m aries_trainer dpo`) with device cuda
and bf16. tokens/s per step is what the trainer logs (policy tokens of chosen +
rejected over the step's wall time); the first two steps are left out. Without --model a
random-weight Llama of ~0.47B parameters (28 layers × 1024, SwiGLU 4096) is written with
transformers and the trainer's byte-level tokenizer: no download, and throughput does not care
about the weights. Writes DIR/gpu-dpo.json and prints the markdown rows for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
FALLBACK_DPO = {"per_device_train_batch_size": 8, "rpo_alpha": 1.0, "precompute_ref_log_probs": True, "learning_rate": 0.001}
RANDOM_LLAMA = {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 28, "num_attention_heads": 16,
                "num_key_value_heads": 16, "max_position_embeddings": 2048}


def example_dpo() -> tuple[dict, str]:
    path = REPO / "examples/arithmetic/aries.json"
    if path.is_file():
        dpo = json.loads(path.read_text(encoding="utf-8")).get("training", {}).get("dpo")
        if dpo:
            return dpo, "examples/arithmetic/aries.json training.dpo"
    return FALLBACK_DPO, "the loop tests' settings"


def random_llama(out: Path) -> Path:
    import torch
    import transformers
    from aries_trainer.tokenizer import write_tokenizer_files

    out.mkdir(parents=True, exist_ok=True)
    write_tokenizer_files(out)
    spec = json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = 256 + len(spec["added_tokens"])
    tok = transformers.AutoTokenizer.from_pretrained(str(out))
    config = transformers.LlamaConfig(vocab_size=vocab, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                                      bos_token_id=None, tie_word_embeddings=True, **RANDOM_LLAMA)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(str(out))
    return out


def rows(n: int) -> list[dict]:
    from aries_trainer.refinement import load_template, render_refinement

    template = load_template()
    out = []
    for i in range(n):
        a, b = (i * 7) % 20, (i * 11 + 3) % 20
        x, chosen, rejected = f"{a}+{b}=", f"{a}+{b} is {a + b}.", f"{a}+{b} is {a + b + 1 + i % 3}."
        for kind, prompt in (("direct", x), ("refine", render_refinement(template, x, rejected))):
            out.append({"id": f"bench-{i}-{kind}", "kind": kind, "prompt": [{"role": "user", "content": prompt}],
                        "chosen": [{"role": "assistant", "content": chosen}], "rejected": [{"role": "assistant", "content": rejected}],
                        "round": 1, "strategy": "verifier", "source": "auto", "curator": None, "prompt_id": f"p{i}",
                        "trajectory_id": i, "chosen_step": 1, "rejected_step": 0, "chosen_step_id": 2 * i + 1,
                        "rejected_step_id": 2 * i, "policy_model": "base"})
    return out


def time_steps(model_dir: Path, work: Path, settings: dict, batch: int, steps: int, device: str) -> dict:
    import torch
    from aries_trainer.cli import main as trainer_main

    dataset = work / f"train-{batch}.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in rows(max(64, batch * (steps + 2)))), encoding="utf-8")
    config = {**settings, "model_name_or_path": str(model_dir), "dataset_path": str(dataset), "output_dir": str(work / f"out-{batch}"),
              "overwrite_output_dir": True, "device": device, "bf16": device == "cuda",
              "per_device_train_batch_size": batch,
              "max_steps": steps, "logging_steps": 1, "export_onnx": False}
    (work / f"config-{batch}.json").write_text(json.dumps(config), encoding="utf-8")
    cuda = device == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    stdout = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(stdout):
        code = trainer_main(["dpo", "--config", str(work / f"config-{batch}.json")])
    wall = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"aries_trainer dpo failed with exit code {code}; its log is above")
    lines = [json.loads(l) for l in stdout.getvalue().splitlines() if l.startswith("{")]
    start = next(l for l in lines if l["type"] == "start")
    tps = [l["tokens_per_second"] for l in lines if l["type"] == "log"][2:]
    return {"batch_rows": batch, "steps": steps, "tokens_per_second_median": statistics.median(tps), "tokens_per_second": tps,
            "num_parameters": start["num_parameters"], "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
            "wall_s_including_load_and_save": round(wall, 1)}


def transformers_version() -> str:
    try:
        import transformers
    except ImportError:
        return "not installed"
    return transformers.__version__


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="Folder for gpu-dpo.json.")
    parser.add_argument("--model", default="", help="A local Hugging Face causal LM folder (e.g. Qwen2.5-0.5B-Instruct). Default: a random ~0.47B Llama.")
    parser.add_argument("--batch-sizes", default="", help="Rows per step, comma-separated (default: the example's per_device_train_batch_size, and 64).")
    parser.add_argument("--steps", type=int, default=12, help="Optimizer steps per batch size (the first two are left out).")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"), help="cpu: a smoke test of this script with a tiny-model folder (--model) where there is no GPU.")
    args = parser.parse_args()

    import torch

    if args.device == "cpu":
        if not args.model:
            print("error: --device cpu is a smoke test; pass --model with a tiny-model folder", file=sys.stderr)
            return 2
    elif not torch.cuda.is_available():
        print("error: PyTorch sees no CUDA device (torch.cuda.is_available() is False)", file=sys.stderr)
        return 2
    settings, source = example_dpo()
    batches = [int(b) for b in args.batch_sizes.split(",") if b] or sorted({int(settings.get("per_device_train_batch_size", 8)), 64})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="aries-gpu-bench-") as tmp:
        work = Path(tmp)
        model_dir = Path(args.model) if args.model else random_llama(work / "random-llama")
        results = [time_steps(model_dir, work, settings, b, args.steps, args.device) for b in batches]
    report = {
        "gpu": torch.cuda.get_device_name(0) if args.device == "cuda" else "none (CPU smoke test)", "torch": torch.__version__,
        "transformers": transformers_version(),
        "model": args.model or f"random Llama {RANDOM_LLAMA}", "dpo_settings": settings, "dpo_settings_from": source,
        "results": results, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    (out / "gpu-dpo.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nGPU DPO step, {report['gpu']}, torch {report['torch']}, transformers {report['transformers']}, {report['model']}:")
    print("| batch (rows) | parameters | tokens/s (median) | peak GPU memory |")
    print("|---|---|---|---|")
    for r in results:
        print(f"| {r['batch_rows']} | {r['num_parameters']:,} | {r['tokens_per_second_median']:,.0f} | {r['peak_gpu_memory_gib']} GiB |")
    print(f"\nwritten: {out / 'gpu-dpo.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
