"""`quantize`: int8 weights for the engine's onnx backend, by onnxruntime's own quantizer.

Dynamic quantization (`onnxruntime.quantization.quantize_dynamic`, QInt8 weights, activations
quantized per batch at run time) of the folder's decoder graph, written beside it as
model_quantized.onnx (the name transformers.js and optimum use for 8-bit graphs). The engine loads
it with `generation.onnxWeights: "int8"`. What it costs in held-out accuracy is measured, not
assumed: docs/benchmarks.md has the table.
"""

from __future__ import annotations

import os
from pathlib import Path

from .config import QuantizeConfig
from .onnx_export import ExportError
from .progress import emit, log

GRAPHS = ("onnx/model.onnx", "model.onnx")


def find_graph(model_dir: Path) -> Path:
    for name in GRAPHS:
        if (model_dir / name).is_file():
            return model_dir / name
    raise FileNotFoundError(f"{model_dir / GRAPHS[0]}: missing; export the model first (`python -m aries_trainer export --model_name_or_path {model_dir}`)")


def run_quantize(cfg: QuantizeConfig) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model_dir = Path(cfg.model_name_or_path)
    source = find_graph(model_dir)
    target = source.with_name("model_quantized.onnx")
    tmp = target.with_name(f".model_quantized.{os.getpid()}.onnx")
    try:
        quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=cfg.per_channel)
        os.replace(tmp, target)  # a reader never sees half a graph
    except Exception as exc:  # onnxruntime raises plain exceptions for graphs it cannot quantize
        raise ExportError(f"{source}: onnxruntime could not quantize it ({type(exc).__name__}: {exc})") from exc
    finally:
        tmp.unlink(missing_ok=True)
    before, after = source.stat().st_size, target.stat().st_size
    log(f"quantized {source} -> {target} ({before / 1e6:.1f} MB -> {after / 1e6:.1f} MB)")
    emit("done", output_dir=str(target.parent.resolve()), model=str(target.resolve()), bytes_before=before, bytes_after=after)
    return target
