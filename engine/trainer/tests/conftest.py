"""Shared fixtures: a tiny model built from scratch in a temp folder, and small datasets."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a test that reaches for the hub fails loudly
TRAINER_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRAINER_DIR))

from tiny_hf import build  # noqa: E402


def make_tiny_model(folder: Path, seed: int = 0, arch: str = "bundled-family") -> Path:
    """A random-init checkpoint of the bundled model's family (or `arch`: llama, qwen2), see tiny_hf.py."""
    return build(arch, folder, seed)


@pytest.fixture()
def tiny_model(tmp_path: Path) -> Path:
    return make_tiny_model(tmp_path / "model")


@pytest.fixture(params=["llama", "qwen2"])
def hf_model(request, tmp_path: Path) -> Path:
    """Tiny random-init LlamaForCausalLM / Qwen2ForCausalLM with a trained BPE tokenizer and ChatML."""
    return make_tiny_model(tmp_path / request.param, arch=request.param)


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture()
def preference_rows() -> list[dict]:
    """Questions whose chosen answer is right and rejected answer is off by one, both kinds."""
    rows = []
    for i in range(16):
        a, b = 10 + i, 7 + 2 * i
        q = f"What is {a}+{b}?"
        rows.append({"id": f"d{i}", "kind": "direct", "prompt": [{"role": "user", "content": q}],
                     "chosen": f"#### {a + b}", "rejected": f"#### {a + b + 1}", "round": 1, "strategy": "verifier"})
        rows.append({"id": f"r{i}", "kind": "refine",
                     "prompt": [{"role": "user", "content": f"{q}\nPrevious answer: #### {a + b + 1}\nCheck it."}],
                     "chosen": [{"role": "assistant", "content": f"#### {a + b}"}],
                     "rejected": [{"role": "assistant", "content": f"#### {a + b + 1}"}]})
    return rows
