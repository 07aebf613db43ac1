"""Our trainer under `accelerate launch` with two CPU processes (DDP over gloo) against one process.

Same rows, seed and global batch (1 process × 8 rows, or 2 processes × 4 rows): every logged loss
and metric, and the trained weights, must agree to float rounding. The rows do not divide evenly
into global batches, so the last step of each epoch leaves one process without rows — the case
where a naive per-process mean would differ. `python engine/trainer/tests/test_accelerate.py OUT`
writes the curves and a plot for docs/training.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import TRAINER_DIR, make_tiny_model, write_jsonl
from test_trl_parity import aries_rows

CPU_DDP = TRAINER_DIR / "accelerate" / "cpu-ddp-2.yaml"
TOLERANCE = 1e-5


def rows(copies: int = 3) -> list[dict]:
    out = []
    for c in range(copies):
        out += [{**r, "id": f"{r['id']}-{c}"} for r in aries_rows()]
    return out  # 12 rows per copy: 36 rows are 4 full global batches of 8 and one of 4


def run(processes: int, model: Path, data: Path, out: Path, objective: str = "dpo", **fields) -> list[dict]:
    config = {"model_name_or_path": str(model), "dataset_path": str(data), "output_dir": str(out),
              "per_device_train_batch_size": 8 // processes, "num_train_epochs": 2, "learning_rate": 1e-3,
              "logging_steps": 1, "export_onnx": False, "seed": 5, **fields}
    path = out.with_suffix(".json")
    path.write_text(json.dumps(config), encoding="utf-8")
    trainer = ["-m", "aries_trainer", objective, "--config", str(path)]
    launch = [sys.executable, *trainer] if processes == 1 else \
        [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CPU_DDP), *trainer]
    env = {**os.environ, "PYTHONPATH": str(TRAINER_DIR), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(launch, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [line["type"] for line in lines].count("start") == 1, "only the main process writes progress"
    return lines


def tensors(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


@pytest.mark.parametrize("objective,fields", [("dpo", {"rpo_alpha": 0.5}), ("sft", {})])
def test_two_processes_train_the_same_model_as_one(objective, fields, tmp_path):
    model = make_tiny_model(tmp_path / "model", seed=1, arch="llama")
    data = write_jsonl(tmp_path / "rows.jsonl", rows())
    one = run(1, model, data, tmp_path / "one", objective, **fields)
    two = run(2, model, data, tmp_path / "two", objective, **fields)
    assert one[0]["processes"] == 1 and two[0]["processes"] == 2 and "MULTI_CPU" in two[0]["device"]
    assert one[0]["total_steps"] == two[0]["total_steps"] == 10
    logs1, logs2 = [x for x in one if x["type"] == "log"], [x for x in two if x["type"] == "log"]
    assert [x["step"] for x in logs1] == [x["step"] for x in logs2] == list(range(1, 11))
    for a, b in zip(logs1, logs2):
        for key in a:
            if key not in ("tokens_per_second",) and isinstance(a[key], float):
                assert abs(a[key] - b[key]) <= TOLERANCE * max(1.0, abs(a[key])), (a["step"], key, a[key], b[key])
    assert logs1[-1]["loss"] < logs1[0]["loss"]
    w1, w2 = tensors(tmp_path / "one"), tensors(tmp_path / "two")
    assert w1.keys() == w2.keys() and all(torch.allclose(w1[k], w2[k], atol=1e-5) for k in w1)


def main(out_dir: Path) -> None:
    """Longer curves (60 steps) for docs/training.md: numbers as JSON and a plot."""
    import tempfile

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        model = make_tiny_model(t / "model", seed=1, arch="llama")
        data = write_jsonl(t / "rows.jsonl", rows(copies=20))  # 240 rows, 30 steps an epoch
        curves = {}
        for n in (1, 2):
            lines = run(n, model, data, t / f"p{n}", "dpo", rpo_alpha=0.5, learning_rate=3e-4)
            curves[n] = [x["loss"] for x in lines if x["type"] == "log"]
    diffs = [abs(a - b) for a, b in zip(curves[1], curves[2])]
    (out_dir / "accelerate-loss-curves.json").write_text(json.dumps({"one_process": curves[1], "two_processes": curves[2],
                                                                      "max_abs_diff": max(diffs)}, indent=1) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    ax.plot(range(1, len(curves[1]) + 1), curves[1], label="1 process, 8 rows / step", linewidth=3, alpha=0.5)
    ax.plot(range(1, len(curves[2]) + 1), curves[2], label="2 processes (DDP, gloo), 4 rows each", linestyle="--", color="black")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("DPO + NLL loss")
    ax.set_title(f"tiny Llama, 240 ARIES rows, 2 epochs: max |difference| {max(diffs):.1e}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "accelerate-loss-curves.png")
    print(json.dumps({"steps": len(diffs), "max_abs_diff": max(diffs)}))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main(Path(sys.argv[1]))
