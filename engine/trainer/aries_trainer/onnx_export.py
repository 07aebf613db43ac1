"""ONNX exports for the engine, made by optimum's own exporter (`optimum.exporters.onnx.main_export`,
the code behind `optimum-cli export onnx`), then checked in onnxruntime against PyTorch.

Policy (task text-generation-with-past): input_ids [B, T], attention_mask [B, P+T], position_ids
[B, T], past_key_values.{i}.key / .value [B, kv_heads, P, head_dim] -> logits [B, T, V],
present.{i}.key / .value. Reward model (task text-classification): input_ids, attention_mask ->
logits [B, num_labels]. The engine's onnx backend and rm:onnx scorer read exactly these layouts.
Only the graph is kept (onnx/model.onnx, plus model.onnx_data for models over 2 GB): the
checkpoint folder already holds the config and tokenizer files optimum would copy next to it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional

import torch

from .progress import log

DECODER_TASK = "text-generation-with-past"
REWARD_TASK = "text-classification"


class ExportError(RuntimeError):
    """optimum could not export the checkpoint; nothing was written."""


def export_onnx(checkpoint: Path, out_dir: Path, task: str = DECODER_TASK, opset: Optional[int] = None,
                trust_remote_code: bool = False) -> Path:
    """Writes out_dir/model.onnx from the saved checkpoint folder (via a temporary folder renamed into place)."""
    from optimum.exporters.onnx import main_export

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.export-", dir=out_dir.parent))
    try:
        try:
            main_export(str(checkpoint), output=str(work / "optimum"), task=task, opset=opset, local_files_only=True,
                        trust_remote_code=trust_remote_code, do_validation=False)
        except Exception as exc:  # optimum raises many kinds; all mean "no graph"
            raise ExportError(f"{checkpoint}: optimum could not export it for {task} ({type(exc).__name__}: {exc})") from exc
        graph = work / "graph"
        graph.mkdir()
        os.chmod(graph, 0o755)
        for name in os.listdir(work / "optimum"):
            if name.startswith("model.onnx"):  # model.onnx and, for large models, model.onnx_data
                (work / "optimum" / name).rename(graph / name)
        if not (graph / "model.onnx").is_file():
            raise ExportError(f"{checkpoint}: optimum wrote no model.onnx for {task}")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        graph.rename(out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out_dir / "model.onnx"


def check_decoder(module: torch.nn.Module, model_path: Path, vocab_size: int, seed: int = 0) -> float:
    """Max |logits| difference between onnxruntime (empty cache, 7 tokens) and PyTorch on random ids."""
    import numpy as np
    import onnxruntime as ort

    config = module.config
    layers = config.num_hidden_layers
    kv_heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    ids = torch.randint(0, vocab_size, (1, 7), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        expected = module(input_ids=ids, use_cache=False).logits.float().numpy()
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    feeds = {"input_ids": ids.numpy(), "attention_mask": np.ones((1, 7), dtype=np.int64)}
    names = {i.name for i in session.get_inputs()}
    if "position_ids" in names:
        feeds["position_ids"] = np.arange(7, dtype=np.int64)[None]
    for i in range(layers):
        for kv in ("key", "value"):
            feeds[f"past_key_values.{i}.{kv}"] = np.zeros((1, kv_heads, 0, head_dim), dtype=np.float32)
    got = session.run(["logits"], feeds)[0]
    return float(np.abs(got - expected).max())


def export_and_check(module: torch.nn.Module, checkpoint: Path, vocab_size: int, tolerance: float = 1e-3) -> float:
    """The policy's export for the next round: optimum's graph in checkpoint/onnx, checked against PyTorch."""
    path = export_onnx(checkpoint, checkpoint / "onnx")
    diff = check_decoder(module, path, vocab_size)
    if not diff <= tolerance:
        raise ExportError(f"{path}: onnxruntime's logits differ from PyTorch's by {diff:.2e} (> {tolerance:g}); the export is wrong")
    log(f"exported {path} with optimum (max |logits diff| vs PyTorch {diff:.2e})")
    export_slots_if_supported(checkpoint)
    return diff


def export_slots_if_supported(checkpoint: Path) -> Optional[Path]:
    """Adds onnx/model_slots.onnx (the engine's faster decode graph) when the architecture has one."""
    import transformers

    from .slot_export import TooLarge, export_slots, unsupported_reason

    reason = unsupported_reason(transformers.AutoConfig.from_pretrained(str(checkpoint), local_files_only=True))
    if reason:
        log(f"no slot-cache graph for {reason}; the engine runs optimum's graph")
        return None
    try:
        return export_slots(checkpoint)
    except TooLarge as exc:
        log(f"{exc}; the engine runs optimum's graph")
        return None
