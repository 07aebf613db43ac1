"""`rm`: a tiny reward model trained with the Bradley-Terry loss -log sigmoid(r(x, y_w) - r(x, y_l))
on ARIES preference rows, written atomically as a checkpoint plus onnx/model.onnx for rm:onnx."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from .config import RMConfig
from .dataset import KINDS, PAIR_KINDS, DatasetError, PreferenceRow, read_rows
from .losses import bradley_terry_loss
from .objectives import dataset_sha256, parse_scratch
from .policy import atomic_output_dir
from .progress import emit, log
from .reward_model import TOKENIZER_FILES, TinyLlamaForSequenceClassification, config_dict, load_start, score_text
from .train_loop import optimize, setup_torch, total_steps_for



@dataclass
class RewardPair:
    chosen: list[int]
    rejected: list[int]
    kind: str


def reward_pairs(rows: list[PreferenceRow], pair_kinds: str, tokenizer: Any, max_length: int) -> tuple[list[RewardPair], int]:
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
    device = setup_torch(cfg)
    loaded = read_rows(Path(cfg.dataset_path))
    if not loaded.preference:
        raise DatasetError(f"{cfg.dataset_path}: no preference rows (prompt, chosen, rejected); `rm` needs the ARIES dataset from `aries export`")
    model, tokenizer, start = load_start(cfg.model_name_or_path, parse_scratch(cfg.init_from_scratch))
    model.to(device)
    max_length = min(cfg.max_length, model.config.max_position_embeddings)
    pairs, truncated = reward_pairs(loaded.preference, cfg.pair_kinds, tokenizer, max_length)
    kinds = {k: sum(p.kind == k for p in pairs) for k in KINDS}
    emit("start", objective="rm", rows=len(pairs), rows_by_kind=kinds, device=str(device),
         num_parameters=sum(p.numel() for p in model.parameters()), total_steps=total_steps_for(cfg, len(pairs))[0] if pairs else 0)
    log(f"reward model: {start} from {cfg.model_name_or_path}")
    if truncated:
        log(f"warning: {truncated} responses were longer than max_length={max_length} tokens and were cut from the left")
    pad = tokenizer.pad_token_id

    def step(batch: Sequence[RewardPair]):
        n = len(batch)
        ids, mask = right_padded([p.chosen for p in batch] + [p.rejected for p in batch], pad)
        ids, mask = ids.to(device), mask.to(device)
        rewards = model(ids, mask)[:, 0]
        chosen, rejected = rewards[:n], rewards[n:]
        loss = bradley_terry_loss(chosen, rejected, cfg.center_rewards_coefficient).mean()
        chosen, rejected = chosen.detach(), rejected.detach()
        metrics = {
            "loss": loss.item(),
            "rewards/chosen": chosen.mean().item(),
            "rewards/rejected": rejected.mean().item(),
            "rewards/margins": (chosen - rejected).mean().item(),
            "rewards/accuracies": (chosen > rejected).float().mean().item(),
        }
        return loss, metrics, int(mask.sum())

    summary = optimize(model, pairs, cfg, step)
    out = save_reward_model(model.to("cpu").eval(), cfg, start)
    emit("done", output_dir=str(out), runtime_s=round(time.perf_counter() - started, 3), **summary)
    log(f"saved reward model to {out}")
    return out


def save_reward_model(model: TinyLlamaForSequenceClassification, cfg: RMConfig, start: str) -> Path:
    source = Path(cfg.model_name_or_path)
    lineage = {"base_model": str(source.resolve()), "init": start, "objective": "rm",
               "dataset": str(Path(cfg.dataset_path).resolve()), "dataset_sha256": dataset_sha256(cfg.dataset_path),
               "config": asdict(cfg)}
    with atomic_output_dir(cfg.output_dir, cfg.overwrite_output_dir) as tmp:
        (tmp / "config.json").write_text(json.dumps(config_dict(model, lineage), indent=2) + "\n", encoding="utf-8")
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        torch.save(state, tmp / "pytorch_model.bin")
        for name in TOKENIZER_FILES:
            if (source / name).is_file():
                (tmp / name).write_bytes((source / name).read_bytes())
        if cfg.export_onnx:
            from .onnx_export import export_reward_onnx

            export_reward_onnx(model, tmp / "onnx", cfg.opset)
    return Path(cfg.output_dir).resolve()
