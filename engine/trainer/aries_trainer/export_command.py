"""`export`: write onnx/model.onnx for a tiny-model checkpoint (policy or reward model) and check a
policy's against PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .config import ExportConfig
from .onnx_export import export_onnx, export_reward_onnx
from .policy import ModelError, load_tiny
from .progress import emit, log
from .reward_model import is_reward_model, load_start


def run_export(cfg: ExportConfig) -> Path:
    model_dir = Path(cfg.model_name_or_path)
    out_dir = Path(cfg.output_dir) if cfg.output_dir else model_dir / "onnx"
    config_path = model_dir / "config.json"
    if config_path.is_file() and is_reward_model(json.loads(config_path.read_text(encoding="utf-8"))):
        # A tiny reward model (`rm`): the sequence-classification layout; parity is checked by the engine tests.
        model, _, _ = load_start(str(model_dir), None)
        path = export_reward_onnx(model, out_dir, cfg.opset)
        emit("done", output_dir=str(out_dir.resolve()), model=str(path.resolve()), max_abs_diff=None)
        log(f"exported reward model {path}")
        return path
    policy = load_tiny(model_dir)
    if policy.kind != "tiny":
        raise ModelError(f"{model_dir}: only tiny models are exported here; use `optimum-cli export onnx` for Hugging Face models")
    path = export_onnx(policy.module.eval(), out_dir, cfg.opset)
    max_diff = check_with_onnxruntime(policy.module, path) if cfg.check else None
    emit("done", output_dir=str(out_dir.resolve()), model=str(path.resolve()), max_abs_diff=max_diff)
    log(f"exported {path}" + ("" if max_diff is None else f" (max |logits diff| vs PyTorch: {max_diff:.2e})"))
    return path


def check_with_onnxruntime(module, path: Path):
    """Max |logits| difference on a random prompt, or None when onnxruntime (Python) is not installed;
    the engine's test suite checks parity in onnxruntime-node either way."""
    try:
        import numpy as np
        import onnxruntime as ort  # type: ignore
    except ImportError:
        log("onnxruntime (Python) not installed: parity is checked by the engine tests instead")
        return None
    cfg = module.config
    ids = torch.randint(0, cfg.vocab_size, (1, 7))
    with torch.no_grad():
        expected = module(ids)[0].numpy()
    feeds = {"input_ids": ids.numpy(), "attention_mask": np.ones((1, 7), dtype=np.int64),
             "position_ids": np.arange(7, dtype=np.int64)[None]}
    for i in range(cfg.num_hidden_layers):
        for kv in ("key", "value"):
            feeds[f"past_key_values.{i}.{kv}"] = np.zeros((1, cfg.num_attention_heads, 0, cfg.head_dim), dtype=np.float32)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(["logits"], feeds)[0]
    return float(np.abs(got - expected).max())
