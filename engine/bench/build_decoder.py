"""Builds the benchmark decoder: a random-init Llama (transformers) at a size where model compute matters.

    PYTHONPATH=engine/trainer .venv/bin/python engine/bench/build_decoder.py OUT_DIR '{"hidden_size": 512, ...}'

Random weights are enough for throughput. The embedding rows of every token but printable ASCII
are zeroed (the lm_head is tied to them), so their logits are always 0 while the argmax is
positive: greedy decoding never emits a special token, and each output re-encodes to the ids that
produced it. End-of-text is unreachable too (every request generates exactly max_new_tokens)
unless the arch says "eos_reachable": true; then it keeps a random row, scaled by "eos_scale", and
greedy sequences end at different lengths, as real ones do.
Writes the checkpoint (config.json, model.safetensors, tokenizer files) and onnx/model.onnx
(optimum's export, as for every model the engine runs).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import transformers

from aries_trainer.onnx_export import export_and_check
from aries_trainer.policy import SCRATCH_DEFAULTS
from aries_trainer.tokenizer import write_tokenizer_files


def main(out_dir: Path, arch: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_tokenizer_files(out_dir)
    # transformers writes the chat template to chat_template.jinja; transformers.js (the bench's
    # peer) reads it from tokenizer_config.json only, so it goes there too (the same text).
    jinja = out_dir / "chat_template.jinja"
    if jinja.exists():
        config_path = out_dir / "tokenizer_config.json"
        config = json.loads(config_path.read_text())
        config["chat_template"] = jinja.read_text()
        config_path.write_text(json.dumps(config, indent=2) + "\n")
    tok = transformers.AutoTokenizer.from_pretrained(str(out_dir))
    vocab = len(tok)
    arch = dict(arch)
    eos_reachable = bool(arch.pop("eos_reachable", False))
    eos_scale = float(arch.pop("eos_scale", 1.0))
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=vocab, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None,
                                   **{**SCRATCH_DEFAULTS, **arch})
    model = transformers.AutoModelForCausalLM.from_config(cfg).eval()
    printable = set(range(32, 127)) | {10}  # byte-level ids 0-255 are the bytes themselves
    if eos_reachable:
        printable.add(tok.eos_token_id)
    with torch.no_grad():
        for i in range(vocab):
            if i not in printable:
                model.model.embed_tokens.weight[i].zero_()
        if eos_reachable:
            model.model.embed_tokens.weight[tok.eos_token_id].mul_(eos_scale)
    model.generation_config = transformers.GenerationConfig(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model.save_pretrained(str(out_dir))
    export_and_check(model, out_dir, vocab)
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"parameters": params}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), json.loads(sys.argv[2]))
