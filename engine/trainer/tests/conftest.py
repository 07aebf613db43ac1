"""Shared fixtures: a tiny model built from scratch in a temp folder, and small datasets."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

TRAINER_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRAINER_DIR))

from aries_trainer.policy import Policy, save_policy  # noqa: E402
from aries_trainer.tiny_model import TinyLlamaConfig, TinyLlamaForCausalLM  # noqa: E402
from aries_trainer.tokenizer import load_tokenizer, write_tokenizer_files  # noqa: E402

TINY_ARCH = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 128}


def make_tiny_model(folder: Path, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_tokenizer_files(folder)
    tok = load_tokenizer(folder)
    torch.manual_seed(seed)
    cfg = TinyLlamaConfig(vocab_size=261, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, **TINY_ARCH)
    policy = Policy(TinyLlamaForCausalLM(cfg), tok, "tiny", folder, cfg.max_position_embeddings)
    save_policy(policy, folder, {"base_model": None})
    return folder


@pytest.fixture()
def tiny_model(tmp_path: Path) -> Path:
    return make_tiny_model(tmp_path / "model")


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
