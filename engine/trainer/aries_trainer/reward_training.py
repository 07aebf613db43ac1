"""`rm`: a reward model trained with the Bradley-Terry loss -log sigmoid(r(x, y_w) - r(x, y_l)) on
ARIES preference rows, written atomically in the Hugging Face layout plus onnx/model.onnx (optimum's
text-classification export) for the engine's rm:onnx scorer."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import torch

from .config import RMConfig
from .dataset import KINDS, PAIR_KINDS, DatasetError, PreferenceRow, read_preference_rows
from .hf_tokenizer import HFTokenizer
from .losses import bradley_terry_loss
from .objectives import dataset_sha256, parse_scratch
from .policy import atomic_output_dir
from .progress import emit, log, peak_memory_mb
from .reward_model import load_start, rewards, score_text
from .train_loop import Runtime, StepOutput, Totals, Trained, emit_start, optimize


@dataclass
class RewardPair:
    chosen: list[int]
    rejected: list[int]
    kind: str


def reward_pairs(rows: list[PreferenceRow], pair_kinds: str, tokenizer: HFTokenizer, max_length: int) -> tuple[list[RewardPair], int]:
    """Token ids of (x, y_w) and (x, y_l) per row, cut from the left to max_length; and how many were cut."""
    truncated = 0

    def encode(row: PreferenceRow, response: str) -> list[int]:
        nonlocal truncated
        try:
            ids = tokenizer.encode(score_text(row.prompt, response, tokenizer))
        except ValueError as exc:
            raise DatasetError(f"{row.where}: {exc}") from exc
        if len(ids) > max_length:
            truncated += 1
            ids = ids[-max_length:]
        return ids

    pairs = [RewardPair(encode(r, r.chosen), encode(r, r.rejected), r.kind) for r in rows if r.kind in PAIR_KINDS[pair_kinds]]
    return pairs, truncated


def right_padded(sequences: Sequence[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for i, s in enumerate(sequences):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


def run_rm(cfg: RMConfig) -> Path:
    started = time.perf_counter()
    runtime = Runtime(cfg)
    loaded = read_preference_rows(cfg.dataset_path, "rm")
    model, tokenizer, start = load_start(cfg.model_name_or_path, parse_scratch(cfg.init_from_scratch), cfg.trust_remote_code)
    max_length = min(cfg.max_length, getattr(model.config, "max_position_embeddings", None) or cfg.max_length)
    pairs, truncated = reward_pairs(loaded.preference, cfg.pair_kinds, tokenizer, max_length)
    kinds = {k: sum(p.kind == k for p in pairs) for k in KINDS}
    emit_start("rm", model, runtime, cfg, len(pairs), kinds)
    log(f"reward model: {start} from {cfg.model_name_or_path}")
    if truncated:
        log(f"warning: {truncated} responses were longer than max_length={max_length} tokens and were cut from the left")
    pad, device = model.config.pad_token_id, runtime.device

    def count(_: RewardPair) -> Totals:
        return Totals(rows=1.0, tokens=0.0)

    def step(run, batch: Sequence[RewardPair], totals: Totals) -> StepOutput:
        n = len(batch)
        ids, mask = right_padded([p.chosen for p in batch] + [p.rejected for p in batch], pad)
        ids, mask = ids.to(device), mask.to(device)
        r = rewards(run, ids, mask)
        chosen, rejected = r[:n], r[n:]
        loss = bradley_terry_loss(chosen, rejected, cfg.center_rewards_coefficient).sum() / totals.rows
        chosen, rejected = chosen.detach(), rejected.detach()
        per_row = lambda t: t.sum().item() / totals.rows  # noqa: E731
        metrics = {
            "rewards/chosen": per_row(chosen),
            "rewards/rejected": per_row(rejected),
            "rewards/margins": per_row(chosen - rejected),
            "rewards/accuracies": per_row((chosen > rejected).float()),
        }
        return StepOutput(loss, metrics, int(mask.sum()))

    trained = optimize(model, pairs, cfg, step, count, runtime)
    out = Path(cfg.output_dir).resolve()
    if runtime.is_main:
        save_reward_model(trained, tokenizer, cfg, start)
        emit("done", output_dir=str(out), runtime_s=round(time.perf_counter() - started, 3), peak_memory_mb=peak_memory_mb(), **trained.summary)
        log(f"saved reward model to {out}")
    runtime.wait()
    return out


def save_reward_model(trained: Trained, tokenizer: HFTokenizer, cfg: RMConfig, start: str) -> Path:
    model = trained.module.to("cpu").eval()
    model.config.aries_lineage = {"base_model": str(Path(cfg.model_name_or_path).resolve()), "init": start, "objective": "rm",
                                  "dataset": str(Path(cfg.dataset_path).resolve()), "dataset_sha256": dataset_sha256(cfg.dataset_path),
                                  "config": asdict(cfg)}
    with atomic_output_dir(cfg.output_dir, cfg.overwrite_output_dir) as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True, state_dict=trained.state_dict)
        tokenizer.save_pretrained(str(tmp))
        if cfg.export_onnx:
            from .onnx_export import REWARD_TASK, export_onnx

            export_onnx(tmp, tmp / "onnx", REWARD_TASK, cfg.opset or None)
    return Path(cfg.output_dir).resolve()
