"""The optimisation loop shared by SFT, DPO and the reward model: batching, accumulation, schedule, logging, NaN guard."""

from __future__ import annotations

import math
import random
import time
from typing import Callable, Sequence, TypeVar

import torch

from .config import LoopConfig
from .progress import emit, log

Example = TypeVar("Example")
# A step function turns a micro-batch of examples into (loss, metrics, tokens processed).
StepFn = Callable[[Sequence[Example]], tuple[torch.Tensor, dict[str, float], int]]


class TrainingError(RuntimeError):
    """Training cannot go on (NaN loss, no rows...); nothing is written."""


def setup_torch(cfg: LoopConfig) -> torch.device:
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise TrainingError("device=cuda but PyTorch sees no CUDA device; use --device cpu or auto")
    use_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    return torch.device("cuda" if use_cuda else "cpu")


def schedule(cfg: LoopConfig, total_steps: int) -> Callable[[int], float]:
    warmup = math.ceil(cfg.warmup_ratio * total_steps)

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if cfg.lr_scheduler_type == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total_steps - warmup)
        if cfg.lr_scheduler_type == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return max(0.0, 1.0 - progress)

    return factor


def total_steps_for(cfg: LoopConfig, rows: int) -> tuple[int, int]:
    micro = math.ceil(rows / cfg.per_device_train_batch_size)
    per_epoch = max(1, math.ceil(micro / cfg.gradient_accumulation_steps))
    total = cfg.max_steps if cfg.max_steps > 0 else max(1, math.ceil(per_epoch * cfg.num_train_epochs))
    return total, per_epoch


def optimize(module: torch.nn.Module, examples: Sequence[Example], cfg: LoopConfig, step_fn: StepFn) -> dict[str, float]:
    """Runs the loop; returns a summary (steps, mean train loss). Raises TrainingError on NaN/inf."""
    if not examples:
        raise TrainingError("no training rows left after filtering; check the dataset and pair_kinds")
    total, per_epoch = total_steps_for(cfg, len(examples))
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule(cfg, total))
    module.train()
    bs, accum = cfg.per_device_train_batch_size, cfg.gradient_accumulation_steps
    step, epoch, losses = 0, 0, []
    window: dict[str, float] = {}
    window_n, window_tokens, window_start = 0, 0, time.perf_counter()
    order_rng = random.Random(cfg.seed)
    while step < total:
        order = list(range(len(examples)))
        order_rng.shuffle(order)
        batches = [order[i : i + bs] for i in range(0, len(order), bs)]
        for start in range(0, len(batches), accum):
            group = batches[start : start + accum]
            for idx in group:
                loss, metrics, tokens = step_fn([examples[i] for i in idx])
                if not torch.isfinite(loss):
                    raise TrainingError(f"loss became {loss.item()} at step {step + 1}; lower learning_rate or check the rows")
                (loss / len(group)).backward()
                for k, v in metrics.items():
                    window[k] = window.get(k, 0.0) + v
                window_n += 1
                window_tokens += tokens
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm if cfg.max_grad_norm > 0 else float("inf"))
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if step % cfg.logging_steps == 0 or step == total:
                averaged = {k: v / window_n for k, v in window.items()}
                losses.append(averaged["loss"])
                elapsed = max(time.perf_counter() - window_start, 1e-9)
                emit("log", step=step, epoch=round(step / per_epoch, 4), learning_rate=scheduler.get_last_lr()[0],
                     grad_norm=float(grad_norm), tokens_per_second=round(window_tokens / elapsed, 1), **averaged)
                window, window_n, window_tokens, window_start = {}, 0, 0, time.perf_counter()
            if step >= total:
                break
        epoch += 1
    log(f"trained {step} steps over {epoch} epoch(s) of {len(examples)} rows")
    return {"steps": step, "train_loss": sum(losses) / len(losses)}
