"""The trainer's side of the engine <-> trainer protocol (engine/src/protocol/trainer.ts mirrors it).

stdout carries one JSON object per line and nothing else:
  {"type": "start", "total_steps", "rows", "rows_by_kind", "num_parameters", "trainable_parameters",
   "device", "processes", "objective"}
  {"type": "log", "step", "epoch", "loss", "learning_rate", "grad_norm", "tokens_per_second",
   DPO: "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies",
        "logps/chosen", "logps/rejected", ["nll_loss"];   SFT: "mean_token_accuracy";
   RM:  "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"
        (the reward model's own outputs r(x, y_w), r(x, y_l), their difference, share with r_w > r_l)}
  {"type": "done", "output_dir", "steps", "train_loss", "runtime_s", "peak_memory_mb"}
  {"type": "error", "message"}   (then a non-zero exit)
Human-readable logs go to stderr. Under `accelerate launch` only the main process writes either.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

_main = True


def set_main_process(is_main: bool) -> None:
    """Other processes of a distributed run stay quiet: the engine reads one stream of lines."""
    global _main
    _main = is_main


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN; the engine treats null as "not a number"
    return value


def emit(kind: str, **fields: Any) -> None:
    if not _main:
        return
    line = json.dumps({"type": kind, **{k: _clean(v) for k, v in fields.items()}}, allow_nan=False)
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def log(message: str) -> None:
    if not _main:
        return
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()


def peak_memory_mb() -> float:
    """Peak resident memory of this process (CPU), or peak CUDA memory allocated when training on a GPU."""
    import torch

    if torch.cuda.is_available() and torch.cuda.max_memory_allocated() > 0:
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux reports KiB
