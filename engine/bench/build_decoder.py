"""Builds the benchmark decoder: the project's tiny Llama at a size where model compute matters.

    PYTHONPATH=engine/trainer /usr/bin/python3 engine/bench/build_decoder.py OUT_DIR '{"hidden_size": 512, ...}'

Random weights are enough for throughput. The embedding rows of every token but printable ASCII
are zeroed (the lm_head is tied to them), so their logits are always 0 while the argmax is
positive: greedy decoding never emits end-of-text or a special token, every request generates
exactly max_new_tokens on every runtime, and each output re-encodes to the ids that produced it.
Writes config.json, generation_config.json, the tokenizer files and onnx/model.onnx.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from aries_trainer.onnx_export import export_onnx
from aries_trainer.tiny_model import TinyLlamaConfig, TinyLlamaForCausalLM
from aries_trainer.tokenizer import load_tokenizer, write_tokenizer_files


def main(out_dir: Path, arch: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_tokenizer_files(out_dir)
    tok = load_tokenizer(out_dir)
    spec = json.loads((out_dir / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = 256 + len(spec["added_tokens"])
    torch.manual_seed(0)
    cfg = TinyLlamaConfig(vocab_size=vocab, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, **arch)
    model = TinyLlamaForCausalLM(cfg).eval()
    printable = set(range(32, 127)) | {10}  # byte-level ids 0-255 are the bytes themselves
    with torch.no_grad():
        for i in range(vocab):
            if i not in printable:
                model.model.embed_tokens.weight[i].zero_()
    export_onnx(model, out_dir / "onnx")
    (out_dir / "config.json").write_text(json.dumps(cfg.to_hf_dict(), indent=2) + "\n", encoding="utf-8")
    (out_dir / "generation_config.json").write_text(
        json.dumps({"eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id}, indent=2) + "\n", encoding="utf-8")
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"parameters": params}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), json.loads(sys.argv[2]))
