"""Sequence log-probabilities and the preference, SFT and reward-model losses.

DPO(p; a, b) = -log sigmoid(beta * [(log pi(a|p) - log pi_ref(a|p)) - (log pi(b|p) - log pi_ref(b|p))])
The ARIES objective is a weighted sum of such terms over direct rows (p = x) and refinement rows
(p = refine(x, y_l)); the weights are applied per row by the trainer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

LOSS_TYPES = ("sigmoid", "ipo")


@dataclass
class Batch:
    input_ids: torch.Tensor  # [N, L], right-padded
    attention_mask: torch.Tensor  # [N, L]
    completion_mask: torch.Tensor  # [N, L], 1 on completion tokens only


def collate(sequences: list[tuple[list[int], list[int]]], pad_id: int) -> Batch:
    """(prompt ids, completion ids) pairs -> one right-padded batch; prompt tokens are masked out."""
    length = max(len(p) + len(c) for p, c in sequences)
    n = len(sequences)
    input_ids = torch.full((n, length), pad_id, dtype=torch.long)
    attention = torch.zeros((n, length), dtype=torch.long)
    completion = torch.zeros((n, length), dtype=torch.float32)
    for i, (p, c) in enumerate(sequences):
        ids = p + c
        input_ids[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention[i, : len(ids)] = 1
        completion[i, len(p) : len(ids)] = 1.0
    return Batch(input_ids, attention, completion)


def sequence_logps(logits: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of log pi(token) over completion tokens, and the number of completion tokens, per row.

    logits[:, t] predicts input_ids[:, t + 1], so position t + 1 counts when it is a completion token.
    """
    logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    targets = batch.input_ids[:, 1:].unsqueeze(-1)
    token_logps = logprobs.gather(-1, targets).squeeze(-1)
    mask = batch.completion_mask[:, 1:]
    return (token_logps * mask).sum(-1), mask.sum(-1)


@dataclass
class PreferenceLoss:
    losses: torch.Tensor  # per row
    chosen_rewards: torch.Tensor
    rejected_rewards: torch.Tensor


def preference_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
    loss_type: str = "sigmoid",
    label_smoothing: float = 0.0,
) -> PreferenceLoss:
    """Per-row DPO (sigmoid) or IPO losses from summed (or, for IPO, length-averaged) log-probs."""
    chosen_ratio = policy_chosen - ref_chosen
    rejected_ratio = policy_rejected - ref_rejected
    logits = chosen_ratio - rejected_ratio
    if loss_type == "sigmoid":
        losses = -F.logsigmoid(beta * logits) * (1 - label_smoothing) - F.logsigmoid(-beta * logits) * label_smoothing
    elif loss_type == "ipo":
        # IPO (Azar et al. 2023): squared distance of the log-ratio gap from 1 / (2 beta).
        losses = (logits - 1 / (2 * beta)) ** 2
    else:
        raise ValueError(f"unknown loss_type {loss_type!r}; use one of {', '.join(LOSS_TYPES)}")
    return PreferenceLoss(losses, beta * chosen_ratio.detach(), beta * rejected_ratio.detach())


def nll_per_row(logps_sum: torch.Tensor, token_counts: torch.Tensor) -> torch.Tensor:
    """Per-token negative log-likelihood of each row's completion."""
    return -logps_sum / token_counts.clamp(min=1)


def bradley_terry_loss(chosen: torch.Tensor, rejected: torch.Tensor, center_coefficient: float = 0.0) -> torch.Tensor:
    """Per-row reward-model loss -log sigmoid(r(x, y_w) - r(x, y_l)), plus TRL's optional
    center_rewards term c * (r_w + r_l)^2 that keeps rewards near 0 (the loss ignores their offset)."""
    losses = -F.logsigmoid(chosen - rejected)
    if center_coefficient:
        losses = losses + center_coefficient * (chosen + rejected) ** 2
    return losses
