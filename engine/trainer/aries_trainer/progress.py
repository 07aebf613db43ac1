"""The trainer's side of the engine <-> trainer protocol (engine/src/protocol/trainer.ts mirrors it).

stdout carries one JSON object per line and nothing else:
  {"type": "start", "total_steps", "rows", "rows_by_kind", "num_parameters", "device", "objective"}
  {"type": "log", "step", "epoch", "loss", "learning_rate", "grad_norm", "tokens_per_second",
   DPO: "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies",
        "logps/chosen", "logps/rejected", ["nll_loss"];   SFT: "mean_token_accuracy";
   RM:  "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"
        (the reward model's own outputs r(x, y_w), r(x, y_l), their difference, share with r_w > r_l)}
  {"type": "done", "output_dir", "steps", "train_loss", "runtime_s"}
  {"type": "error", "message"}   (then a non-zero exit)
Human-readable logs go to stderr.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN; the engine treats null as "not a number"
    return value


def emit(kind: str, **fields: Any) -> None:
    line = json.dumps({"type": kind, **{k: _clean(v) for k, v in fields.items()}}, allow_nan=False)
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def log(message: str) -> None:
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()
