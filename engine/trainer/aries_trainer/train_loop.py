"""The optimisation loop shared by SFT, DPO and the reward model, on one process or several.

Processes come from `accelerate launch` (DDP over gloo on CPUs, NCCL on GPUs; DeepSpeed / FSDP
from the config file); a plain `python -m aries_trainer` is one process. Every process shuffles
the rows with the same seed, so all know each optimizer step's *global* batch (per_device ×
accumulation × processes rows); each takes its contiguous slice. A step function returns its
rows' loss already divided by the global totals of that step (rows, tokens: `Totals`), so
summing over micro-batches and processes gives exactly the single-process objective of the same
global batch: a 2-process run's loss curve equals the 1-process one up to float rounding
(engine/trainer/tests/test_accelerate.py). Metrics are normalised the same way.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Sequence, TypeVar

import torch

from .config import LoopConfig
from .progress import emit, log, set_main_process

Example = TypeVar("Example")


@dataclass
class Totals:
    """What a step's losses are divided by: counts over the whole global batch of one optimizer step."""

    rows: float
    tokens: float  # the objective's token count (completion tokens for SFT, chosen tokens for DPO's NLL term)


@dataclass
class StepOutput:
    loss: torch.Tensor  # this micro-batch's share of the step's loss (already divided by the Totals)
    metrics: dict[str, float]  # this micro-batch's share of each metric (already divided by the Totals)
    tokens: int  # tokens processed (attention mask), for tokens/s


@dataclass
class Trained:
    module: torch.nn.Module  # unwrapped (no DDP / DeepSpeed wrapper)
    state_dict: Optional[dict]  # gathered full weights on the main process (None: take the module's own)
    summary: dict[str, float]


# step(model, examples, totals) -> StepOutput; `model` is the (possibly DDP-wrapped) module to run.
StepFn = Callable[[torch.nn.Module, Sequence[Example], Totals], StepOutput]


class TrainingError(RuntimeError):
    """Training cannot go on (NaN loss, no rows...); nothing is written."""


class Runtime:
    """The processes this run has (accelerate's state) and where tensors go."""

    def __init__(self, cfg: LoopConfig) -> None:
        if cfg.device == "cuda" and not torch.cuda.is_available():
            raise TrainingError("device=cuda but PyTorch sees no CUDA device; use --device cpu or auto")
        if cfg.num_threads > 0:
            torch.set_num_threads(cfg.num_threads)
        from accelerate import Accelerator

        # cpu=True also where there is no GPU: under a torchrun launch (accelerate/cpu-ddp-2.yaml) accelerate
        # then joins the processes over gloo; without it each process would run alone.
        self.accelerator = Accelerator(cpu=cfg.device == "cpu" or not torch.cuda.is_available())
        self.device: torch.device = self.accelerator.device
        self.world: int = self.accelerator.num_processes
        self.rank: int = self.accelerator.process_index
        self.is_main: bool = self.accelerator.is_main_process
        set_main_process(self.is_main)
        random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)

    def describe(self) -> str:
        kind = self.accelerator.distributed_type.value if self.world > 1 else "single"
        return f"{self.device} ({kind}, {self.world} process{'es' if self.world > 1 else ''})"

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over processes."""
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        return self.accelerator.reduce(t, reduction="sum").tolist()

    def gather(self, items: list) -> list:
        """Every process's list, concatenated in rank order."""
        if self.world == 1:
            return items
        from accelerate.utils import gather_object

        return gather_object(items)

    def wait(self) -> None:
        self.accelerator.wait_for_everyone()


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


def global_batch(cfg: LoopConfig, world: int = 1) -> int:
    return cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps * world


def total_steps_for(cfg: LoopConfig, rows: int, world: int = 1) -> tuple[int, int]:
    per_epoch = max(1, math.ceil(rows / global_batch(cfg, world)))
    total = cfg.max_steps if cfg.max_steps > 0 else max(1, math.ceil(per_epoch * cfg.num_train_epochs))
    return total, per_epoch


@dataclass
class Plan:
    """One optimizer step as this process sees it."""

    micro_batches: list[list[int]]  # indices of this process's rows, one list per micro-batch (may be empty)
    step_rows: list[int]  # every row of the global step (all processes)


def plan_steps(n: int, cfg: LoopConfig, world: int, rank: int, seed: int) -> Iterator[Plan]:
    """Yields the Plan of each optimizer step, epoch after epoch (reshuffled each epoch, same on every process)."""
    order_rng = random.Random(seed)
    size = global_batch(cfg, world)
    per_rank = cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps
    bs = cfg.per_device_train_batch_size
    while True:
        order = list(range(n))
        order_rng.shuffle(order)
        for start in range(0, n, size):
            step_rows = order[start : start + size]
            mine = step_rows[rank * per_rank : (rank + 1) * per_rank]
            yield Plan([mine[i : i + bs] for i in range(0, cfg.gradient_accumulation_steps * bs, bs)], step_rows)


def optimize(module: torch.nn.Module, examples: Sequence[Example], cfg: LoopConfig, step_fn: StepFn,
             count: Callable[[Example], Totals], runtime: Runtime) -> Trained:
    """Runs the loop; returns the trained module and a summary. Raises TrainingError on NaN/inf."""
    if not examples:
        raise TrainingError("no training rows left after filtering; check the dataset and pair_kinds")
    acc = runtime.accelerator
    total, per_epoch = total_steps_for(cfg, len(examples), runtime.world)
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule(cfg, total))
    model, optimizer = acc.prepare(module, optimizer)
    model.train()
    step, losses = 0, []
    window: dict[str, float] = {}
    window_n, window_tokens, window_start = 0, 0, time.perf_counter()
    plans = plan_steps(len(examples), cfg, runtime.world, runtime.rank, cfg.seed)
    while step < total:
        plan = next(plans)
        totals = _sum_totals([count(examples[i]) for i in plan.step_rows])
        step_loss, step_metrics, step_tokens = 0.0, {}, 0
        for k, rows in enumerate(plan.micro_batches):
            last = k == len(plan.micro_batches) - 1
            # A process whose slice ran out still takes part in the gradient all-reduce: it runs its
            # step's first row with a zero weight.
            scale = 1.0 if rows else 0.0
            batch = [examples[i] for i in (rows or plan.step_rows[:1])]
            with acc.no_sync(model) if not last else contextlib.nullcontext():
                out = step_fn(model, batch, totals)
                if not torch.isfinite(out.loss):
                    raise TrainingError(f"loss became {out.loss.item()} at step {step + 1}; lower learning_rate or check the rows")
                # DDP averages gradients over processes; the losses are already global sums, so undo the average.
                acc.backward(out.loss * (scale * runtime.world))
            step_loss += scale * out.loss.item()
            for key, v in out.metrics.items():
                step_metrics[key] = step_metrics.get(key, 0.0) + scale * v
            step_tokens += out.tokens if rows else 0
        keys = sorted(step_metrics)
        reduced = runtime.sum([step_loss, float(step_tokens), *[step_metrics[key] for key in keys]])
        grad_norm = acc.clip_grad_norm_(params, cfg.max_grad_norm if cfg.max_grad_norm > 0 else float("inf"))
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        window["loss"] = window.get("loss", 0.0) + reduced[0]
        for key, v in zip(keys, reduced[2:]):
            window[key] = window.get(key, 0.0) + v
        window_n += 1
        window_tokens += int(reduced[1])
        if step % cfg.logging_steps == 0 or step == total:
            averaged = {key: v / window_n for key, v in window.items()}
            losses.append(averaged["loss"])
            elapsed = max(time.perf_counter() - window_start, 1e-9)
            emit("log", step=step, epoch=round(step / per_epoch, 4), learning_rate=scheduler.get_last_lr()[0],
                 grad_norm=float(grad_norm), tokens_per_second=round(window_tokens / elapsed, 1), **averaged)
            window, window_n, window_tokens, window_start = {}, 0, 0, time.perf_counter()
    log(f"trained {step} steps ({step / per_epoch:.2f} epochs) of {len(examples)} rows on {runtime.describe()}")
    runtime.wait()
    # Under ZeRO-3 / FSDP the weights are sharded: gathering them is a collective every process joins.
    sharded = acc.distributed_type.value in ("DEEPSPEED", "FSDP")
    state = acc.get_state_dict(model) if sharded else None
    return Trained(acc.unwrap_model(model), state, {"steps": step, "train_loss": sum(losses) / len(losses)})


def _sum_totals(items: list[Totals]) -> Totals:
    return Totals(rows=float(sum(t.rows for t in items)), tokens=float(sum(t.tokens for t in items)))


def emit_start(objective: str, module, runtime: Runtime, cfg, rows: int, kinds: dict) -> None:
    """The `start` progress line every training command prints: rows by kind, where it runs, sizes."""
    from .progress import emit

    params = list(module.parameters())
    emit("start", objective=objective, rows=rows, rows_by_kind=kinds, device=runtime.describe(), processes=runtime.world,
         num_parameters=sum(p.numel() for p in params), trainable_parameters=sum(p.numel() for p in params if p.requires_grad),
         total_steps=total_steps_for(cfg, rows, runtime.world)[0] if rows else 0)
