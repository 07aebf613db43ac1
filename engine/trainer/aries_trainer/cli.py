"""`python -m aries_trainer sft|dpo|rm|export|quantize [--field value ...] [--config file.json]`.

The flags are generated from the config dataclasses, so `--help` lists every field with its help.
Exit codes: 0 done, 2 bad input (dataset, model folder, flags), 3 training failed (e.g. NaN loss),
1 anything unexpected. Every failure also prints {"type": "error", "message"} on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import typing
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Optional, Sequence

from .config import DPOConfig, ExportConfig, ExportSlotsConfig, QuantizeConfig, RMConfig, SFTConfig
from .dataset import DatasetError
from .onnx_export import ExportError
from .policy import ModelError
from .progress import emit
from .train_loop import TrainingError

EXIT_BAD_INPUT = 2
EXIT_TRAINING_FAILED = 3

COMMANDS = {
    "sft": (SFTConfig, "Self-refinement SFT: NLL of the chosen / completion text given its prompt."),
    "dpo": (DPOConfig, "ARIES preference optimisation (DPO or IPO) on direct and refinement pairs."),
    "rm": (RMConfig, "Train a reward model (Bradley-Terry loss on preference rows) and export it for the engine's rm:onnx scorer."),
    "export": (ExportConfig, "Export a checkpoint to ONNX with optimum (decoder-with-past for a causal LM, text-classification for a reward model)."),
    "export-slots": (ExportSlotsConfig, "Write onnx/model_slots.onnx for a Llama, Mistral or Qwen2 checkpoint: the decoder graph whose key/value cache is an input only (the engine's fastest local decoding), checked against transformers."),
    "quantize": (QuantizeConfig, "Write int8 weights (onnxruntime's dynamic quantization) of a folder's decoder graph as model_quantized.onnx."),
}


def parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m aries_trainer", description="ARIES trainer")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (cls, doc) in COMMANDS.items():
        p = sub.add_parser(name, help=doc, description=doc, argument_default=argparse.SUPPRESS)
        p.add_argument("--config", help="JSON file of field values; flags given on the command line win.")
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            kind = hints[f.name]
            parse = parse_bool if kind is bool else kind
            default = f.default if f.default is not MISSING else None
            p.add_argument(f"--{f.name}", type=parse, choices=f.metadata.get("choices"),
                           help=f"{f.metadata['help']} (default: {default!r})")
    return parser


def make_config(cls, args: argparse.Namespace) -> Any:
    values: dict[str, Any] = {}
    if getattr(args, "config", None):
        path = Path(args.config)
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: cannot read the config ({exc})") from exc
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: the config must be a JSON object of field values")
        known = {f.name: f for f in fields(cls)}
        hints = typing.get_type_hints(cls)
        for key, value in loaded.items():
            if key not in known:
                raise ValueError(f"{path}: unknown field {key!r}; see `python -m aries_trainer {args.command} --help`")
            expected = hints[key]
            ok = isinstance(value, expected) and not (expected is not bool and isinstance(value, bool))
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                ok, value = True, float(value)
            if not ok:
                raise ValueError(f"{path}: field {key!r} must be {expected.__name__}, got {type(value).__name__}")
            choices = known[key].metadata.get("choices")
            if choices and value not in choices:
                raise ValueError(f"{path}: field {key!r} is {value!r}; use one of {', '.join(choices)}")
            values[key] = value
    values.update({k: v for k, v in vars(args).items() if k not in ("command", "config")})
    return cls(**values)


def _require(cfg: Any, *names: str) -> None:
    for name in names:
        if not getattr(cfg, name):
            raise ValueError(f"--{name} is required")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cls = COMMANDS[args.command][0]
        cfg = make_config(cls, args)
        if args.command == "export":
            _require(cfg, "model_name_or_path")
            from .export_command import run_export

            run_export(cfg)
        elif args.command == "export-slots":
            _require(cfg, "model_name_or_path")
            from .slot_export import run_export_slots

            run_export_slots(cfg)
        elif args.command == "quantize":
            _require(cfg, "model_name_or_path")
            from .quantize import run_quantize

            run_quantize(cfg)
        else:
            _require(cfg, "model_name_or_path", "dataset_path", "output_dir")
            from .objectives import run_dpo, run_sft
            from .reward_training import run_rm

            {"dpo": run_dpo, "sft": run_sft, "rm": run_rm}[args.command](cfg)
        return 0
    except (DatasetError, ModelError, ValueError, FileNotFoundError) as exc:
        return _fail(str(exc), EXIT_BAD_INPUT)
    except TrainingError as exc:
        return _fail(f"training failed: {exc}", EXIT_TRAINING_FAILED)
    except ExportError as exc:
        return _fail(f"export failed: {exc}", EXIT_TRAINING_FAILED)
    except KeyboardInterrupt:
        return _fail("interrupted; nothing was written", 130)


def _fail(message: str, code: int) -> int:
    # Every process of a distributed run says why it stops (only the main one writes the JSON line).
    rank = os.environ.get("RANK")
    sys.stderr.write(f"error{'' if rank in (None, '0') else f' (process {rank})'}: {message}\n")
    sys.stderr.flush()
    emit("error", message=message, exit_code=code)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
