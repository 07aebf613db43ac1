"""Builds the benchmark decoder: a random-init Llama (transformers) at a size where model compute matters.

    PYTHONPATH=engine/trainer .venv/bin/python engine/bench/build_decoder.py OUT_DIR '{"hidden_size": 512, ...}'

Random weights are enough for throughput. The embedding rows of every token but printable ASCII
are zeroed (the lm_head is tied to them), so their logits are always 0 while the argmax is
positive: greedy decoding never emits end-of-text or a special token, every request generates
exactly max_new_tokens on every runtime, and each output re-encodes to the ids that produced it.
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
    tok = transformers.AutoTokenizer.from_pretrained(str(out_dir))
    vocab = len(tok)
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=vocab, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None,
                                   **{**SCRATCH_DEFAULTS, **arch})
    model = transformers.AutoModelForCausalLM.from_config(cfg).eval()
    printable = set(range(32, 127)) | {10}  # byte-level ids 0-255 are the bytes themselves
    with torch.no_grad():
        for i in range(vocab):
            if i not in printable:
                model.model.embed_tokens.weight[i].zero_()
    model.generation_config = transformers.GenerationConfig(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model.save_pretrained(str(out_dir))
    export_and_check(model, out_dir, vocab)
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"parameters": params}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), json.loads(sys.argv[2]))
