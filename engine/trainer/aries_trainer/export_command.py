"""`export`: write onnx/model.onnx for a checkpoint with optimum's exporter — a causal LM in the decoder
layout the engine generates with (checked against PyTorch), or a reward model for rm:onnx. The engine
runs it after a training command that wrote no graph (`trl dpo`, any Hugging Face trainer)."""

from __future__ import annotations

from pathlib import Path

from .config import ExportConfig
from .onnx_export import DECODER_TASK, REWARD_TASK, ExportError, check_decoder, export_onnx, export_slots_if_supported
from .policy import check_causal_lm_folder, load_policy, read_config
from .progress import emit, log
from .reward_model import is_reward_model


def run_export(cfg: ExportConfig) -> Path:
    model_dir = Path(cfg.model_name_or_path)
    out_dir = Path(cfg.output_dir) if cfg.output_dir else model_dir / "onnx"
    if is_reward_model(read_config(model_dir)):
        path = export_onnx(model_dir, out_dir, REWARD_TASK, cfg.opset or None, cfg.trust_remote_code)
        emit("done", output_dir=str(out_dir.resolve()), model=str(path.resolve()), max_abs_diff=None)
        log(f"exported reward model {path}")
        return path
    check_causal_lm_folder(model_dir, cfg.trust_remote_code)
    path = export_onnx(model_dir, out_dir, DECODER_TASK, cfg.opset or None, cfg.trust_remote_code)
    max_diff = None
    if cfg.check:
        policy = load_policy(str(model_dir), trust_remote_code=cfg.trust_remote_code)
        max_diff = check_decoder(policy.module.eval(), path, policy.tokenizer.vocab_size)
        if not max_diff <= 1e-3:
            raise ExportError(f"{path}: onnxruntime's logits differ from PyTorch's by {max_diff:.2e}; the export is wrong")
    slots = None
    if cfg.slots and out_dir.resolve() == (model_dir / "onnx").resolve() and not cfg.trust_remote_code:
        slots = export_slots_if_supported(model_dir)
    emit("done", output_dir=str(out_dir.resolve()), model=str(path.resolve()), max_abs_diff=max_diff,
         slots_model=None if slots is None else str(slots.resolve()))
    log(f"exported {path}" + ("" if max_diff is None else f" (max |logits diff| vs PyTorch: {max_diff:.2e})"))
    return path
