"""ONNX exports of the tiny models in the layouts Hugging Face / optimum write.

Policy (decoder-with-past, `export_onnx`):
  Inputs:  input_ids [B, T] int64, attention_mask [B, P+T] int64, position_ids [B, T] int64,
           past_key_values.{i}.key / .value [B, H, P, D] float32 (P may be 0 on the first call)
  Outputs: logits [B, T, V], present.{i}.key / .value [B, H, P+T, D]
  This is what `optimum-cli export onnx --task text-generation-with-past` writes for Llama models,
  so the engine's onnx backend (and transformers.js) load it like any exported Hugging Face model.
Reward model (sequence classification, `export_reward_onnx`):
  Inputs:  input_ids [B, T] int64, attention_mask [B, T] int64
  Outputs: logits [B, num_labels] (read at each row's last attended token)
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch
from torch import nn

from .reward_model import TinyLlamaForSequenceClassification
from .tiny_model import TinyLlamaForCausalLM


class _DecoderWithPast(nn.Module):
    def __init__(self, model: TinyLlamaForCausalLM) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, position_ids, *past_flat):
        past = [(past_flat[2 * i], past_flat[2 * i + 1]) for i in range(len(past_flat) // 2)]
        logits, presents = self.model(input_ids, attention_mask, position_ids, past)
        return (logits, *[t for kv in presents for t in kv])


def io_names(layers: int) -> tuple[list[str], list[str]]:
    past = [f"past_key_values.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    present = [f"present.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    return ["input_ids", "attention_mask", "position_ids", *past], ["logits", *present]


def export_onnx(model: TinyLlamaForCausalLM, out_dir: Path, opset: int = 14) -> Path:
    """Writes out_dir/model.onnx (via a temporary folder, renamed into place when complete)."""
    cfg = model.config
    model = model.eval()
    layers, heads, head_dim = cfg.num_hidden_layers, cfg.num_attention_heads, cfg.head_dim
    batch, seq, past_len = 2, 3, 2
    input_ids = torch.randint(0, cfg.vocab_size, (batch, seq))
    attention_mask = torch.ones(batch, past_len + seq, dtype=torch.long)
    position_ids = torch.arange(past_len, past_len + seq).unsqueeze(0).expand(batch, seq).contiguous()
    past = [torch.zeros(batch, heads, past_len, head_dim) for _ in range(2 * layers)]
    inputs, outputs = io_names(layers)
    axes: dict[str, dict[int, str]] = {
        "input_ids": {0: "batch_size", 1: "sequence_length"},
        "attention_mask": {0: "batch_size", 1: "total_sequence_length"},
        "position_ids": {0: "batch_size", 1: "sequence_length"},
        "logits": {0: "batch_size", 1: "sequence_length"},
    }
    for name in inputs[3:]:
        axes[name] = {0: "batch_size", 2: "past_sequence_length"}
    for name in outputs[1:]:
        axes[name] = {0: "batch_size", 2: "total_sequence_length"}
    return _write_graph(_DecoderWithPast(model), (input_ids, attention_mask, position_ids, *past), inputs, outputs, axes, out_dir, opset)


def export_reward_onnx(model: TinyLlamaForSequenceClassification, out_dir: Path, opset: int = 14) -> Path:
    """The reward model in optimum's sequence-classification layout (what `optimum-cli export onnx
    --task text-classification` writes): input_ids [B, T] int64, attention_mask [B, T] int64 ->
    logits [B, num_labels]. No position_ids input: the graph numbers attended tokens from the mask."""
    model = model.eval()
    input_ids = torch.randint(0, model.config.vocab_size, (2, 5))
    attention_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.long)
    axes = {"input_ids": {0: "batch_size", 1: "sequence_length"}, "attention_mask": {0: "batch_size", 1: "sequence_length"},
            "logits": {0: "batch_size"}}
    return _write_graph(model, (input_ids, attention_mask), ["input_ids", "attention_mask"], ["logits"], axes, out_dir, opset)


def _write_graph(module: nn.Module, args: tuple, inputs: list[str], outputs: list[str], axes: dict, out_dir: Path, opset: int) -> Path:
    """Writes out_dir/model.onnx (via a temporary folder, renamed into place when complete)."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    os.chmod(tmp, 0o755)
    try:
        with torch.no_grad():
            torch.onnx.export(module, args, str(tmp / "model.onnx"), input_names=inputs, output_names=outputs,
                              dynamic_axes=axes, opset_version=opset, do_constant_folding=True)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir / "model.onnx"
