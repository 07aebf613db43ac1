"""The two training objectives on ARIES rows: preference optimisation (DPO / IPO, optionally with an
NLL term) and self-refinement SFT. Both end in an atomic checkpoint (plus ONNX for tiny models)."""

from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch

from .config import DPOConfig, SFTConfig, TrainConfig
from .dataset import KINDS, PAIR_KINDS, DatasetError, PreferenceRow, Prompt, SFTRow, prompt_text, read_rows
from .losses import Batch, collate, nll_per_row, preference_loss, sequence_logps
from .policy import Policy, atomic_output_dir, load_policy, save_policy
from .progress import emit, log
from .refinement import load_template, render_refinement
from .train_loop import optimize, setup_torch


@dataclass
class PairExample:
    prompt: list[int]
    chosen: list[int]
    rejected: list[int]
    weight: float
    kind: str
    ref_chosen: Optional[float] = None
    ref_rejected: Optional[float] = None
    # completion tokens of chosen / rejected that the preference term counts (preference_span)
    span: Optional[int] = None


def first_difference_span(chosen: list[int], rejected: list[int]) -> Optional[int]:
    """Tokens up to and including the first position where the two differ; None when one is a prefix of
    the other (they then differ only in length, and the whole completions are compared)."""
    for i, (a, b) in enumerate(zip(chosen, rejected)):
        if a != b:
            return i + 1
    return None


@dataclass
class PairLogps:
    chosen: torch.Tensor  # summed over the preference span
    rejected: torch.Tensor
    chosen_count: torch.Tensor  # tokens in the span
    rejected_count: torch.Tensor
    chosen_full: torch.Tensor  # summed over the whole chosen completion (NLL)
    chosen_full_count: torch.Tensor
    tokens: int


@dataclass
class SFTExample:
    prompt: list[int]
    completion: list[int]


def refine_prompt(prompt: Prompt, previous: str, template: str, where: str) -> Prompt:
    """refine(x, y): the string prompt, or the chat whose last user turn is x, with x rewritten."""
    if isinstance(prompt, str):
        return render_refinement(template, prompt, previous)
    users = [i for i, m in enumerate(prompt) if m["role"] == "user"]
    if not users:
        raise DatasetError(f"{where}: cannot build a refinement prompt: the chat has no user message")
    out = copy.deepcopy(prompt)
    out[users[-1]]["content"] = render_refinement(template, prompt[users[-1]]["content"], previous)
    return out


class Encoder:
    """Text -> token ids with the model's chat template and eos; cuts over-long prompts from the left."""

    def __init__(self, policy: Policy, max_length: int) -> None:
        self.tok = policy.tokenizer
        self.max_length = min(max_length, policy.max_positions)
        self.truncated = 0

    def prompt(self, prompt: Prompt, where: str) -> list[int]:
        return self.tok.encode(prompt_text(prompt, self.tok, where))  # type: ignore[attr-defined]

    def completion(self, text: str) -> list[int]:
        return self.tok.encode(text) + [self.tok.eos_token_id]  # type: ignore[attr-defined]

    def fit(self, prompt: list[int], *completions: list[int]) -> tuple[list[int], list[list[int]]]:
        room = self.max_length - max(len(c) for c in completions)
        if room < 1:
            self.truncated += 1
            keep = self.max_length // 2
            return prompt[-keep:], [c[: self.max_length - keep] for c in completions]
        if len(prompt) > room:
            self.truncated += 1
            return prompt[-room:], list(completions)
        return prompt, list(completions)


def dataset_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _template(cfg: TrainConfig) -> Optional[str]:
    if not cfg.refine_from_direct:
        return None
    return load_template(Path(cfg.refinement_template) if cfg.refinement_template else None)


def preference_examples(rows: list[PreferenceRow], cfg: DPOConfig, enc: Encoder) -> list[PairExample]:
    template = _template(cfg)
    expanded: list[PreferenceRow] = []
    for r in rows:
        expanded.append(r)
        if template is not None and r.kind == "direct":
            expanded.append(PreferenceRow(refine_prompt(r.prompt, r.rejected, template, r.where), r.chosen, r.rejected, "refine", r.id + ":refine", r.where))
    kinds = PAIR_KINDS[cfg.pair_kinds]
    weight = {"direct": cfg.w_direct, "refine": cfg.w_refine, "keep": cfg.w_keep}
    out = []
    for r in expanded:
        if r.kind not in kinds:
            continue
        p, (c, rj) = enc.fit(enc.prompt(r.prompt, r.where), enc.completion(r.chosen), enc.completion(r.rejected))
        span = first_difference_span(c, rj) if cfg.preference_span == "first_difference" else None
        out.append(PairExample(p, c, rj, weight[r.kind], r.kind, span=span))
    return out


def sft_examples(loaded_sft: list[SFTRow], loaded_pref: list[PreferenceRow], cfg: TrainConfig, enc: Encoder) -> list[SFTExample]:
    """Prompt/completion rows as they are; preference rows give y_w after x (direct rows) and after
    refine(x, y_l) (refine rows, or derived from direct rows with refine_from_direct)."""
    template = _template(cfg)
    pairs: list[tuple[Prompt, str, str]] = [(r.prompt, r.completion, r.where) for r in loaded_sft]
    for r in loaded_pref:
        pairs.append((r.prompt, r.chosen, r.where))
        if template is not None and r.kind == "direct":
            pairs.append((refine_prompt(r.prompt, r.rejected, template, r.where), r.chosen, r.where))
    out = []
    for prompt, completion, where in pairs:
        p, (c,) = enc.fit(enc.prompt(prompt, where), enc.completion(completion))
        out.append(SFTExample(p, c))
    return out


def _pair_logps(policy: Policy, module, batch_examples: Sequence[PairExample], device: torch.device) -> PairLogps:
    n = len(batch_examples)
    seqs = [(e.prompt, e.chosen) for e in batch_examples] + [(e.prompt, e.rejected) for e in batch_examples]
    batch = collate(seqs, policy.tokenizer.pad_token_id)  # type: ignore[attr-defined]
    ids, mask = batch.input_ids.to(device), batch.attention_mask.to(device)
    batch.input_ids, batch.completion_mask = ids, batch.completion_mask.to(device)
    logits = module(ids, mask)
    full, full_counts = sequence_logps(logits, batch)
    if all(e.span is None for e in batch_examples):
        span, span_counts = full, full_counts
    else:
        # the same forward pass, counting only the first `span` completion tokens of each sequence
        spans = [e.span for e in batch_examples] * 2
        limited = batch.completion_mask.clone()
        for i, ((p, c), k) in enumerate(zip(seqs, spans)):
            if k is not None:
                limited[i, len(p) + k :] = 0.0
        span, span_counts = sequence_logps(logits, Batch(ids, mask, limited))
    return PairLogps(span[:n], span[n:], span_counts[:n], span_counts[n:], full[:n], full_counts[:n], int(mask.sum()))


def precompute_reference(policy: Policy, examples: list[PairExample], device: torch.device, bs: int) -> None:
    """pi_ref is the policy before any update, so its log-probs are computed once, up front."""
    ref = lambda ids, mask: policy.logits(policy.module, ids, mask)  # noqa: E731
    policy.module.eval()
    with torch.no_grad():
        for i in range(0, len(examples), bs):
            chunk = examples[i : i + bs]
            out = _pair_logps(policy, ref, chunk, device)
            for e, a, b in zip(chunk, out.chosen.tolist(), out.rejected.tolist()):
                e.ref_chosen, e.ref_rejected = a, b


def run_dpo(cfg: DPOConfig) -> Path:
    started = time.perf_counter()
    device = setup_torch(cfg)
    loaded = read_rows(Path(cfg.dataset_path))
    if not loaded.preference:
        raise DatasetError(f"{cfg.dataset_path}: no preference rows (prompt, chosen, rejected); `dpo` needs the ARIES dataset from `aries export`")
    policy = load_policy(cfg.model_name_or_path, cfg.backend, cfg.bf16, cfg.use_peft, _lora(cfg))
    policy.module.to(device)
    enc = Encoder(policy, cfg.max_length)
    examples = preference_examples(loaded.preference, cfg, enc)
    kinds = {k: sum(e.kind == k for e in examples) for k in KINDS}
    emit("start", objective="dpo", rows=len(examples), rows_by_kind=kinds, device=str(device),
         num_parameters=sum(p.numel() for p in policy.module.parameters()), total_steps=_total(cfg, len(examples)))
    if enc.truncated:
        log(f"warning: {enc.truncated} rows were longer than max_length={enc.max_length} and were cut")
    model_fn = lambda ids, mask: policy.logits(policy.module, ids, mask)  # noqa: E731
    ref_fn = None
    if cfg.precompute_ref_log_probs:
        precompute_reference(policy, examples, device, cfg.per_device_train_batch_size * 2)
    else:
        ref_fn = policy.reference()

    def step(batch_examples: Sequence[PairExample]):
        out_p = _pair_logps(policy, model_fn, batch_examples, device)
        pc, pr, cc, cr = out_p.chosen, out_p.rejected, out_p.chosen_count, out_p.rejected_count
        if ref_fn is None:
            rc = torch.tensor([e.ref_chosen for e in batch_examples], device=device)
            rr = torch.tensor([e.ref_rejected for e in batch_examples], device=device)
        else:
            with torch.no_grad():
                out_r = _pair_logps(policy, ref_fn, batch_examples, device)
                rc, rr = out_r.chosen, out_r.rejected
        if cfg.loss_type == "ipo":  # IPO compares length-averaged log-probs
            out = preference_loss(pc / cc, pr / cr, rc / cc, rr / cr, cfg.beta, "ipo")
        else:
            out = preference_loss(pc, pr, rc, rr, cfg.beta, "sigmoid", cfg.label_smoothing)
        weights = torch.tensor([e.weight for e in batch_examples], device=device)
        loss = (weights * out.losses).mean()
        metrics = {
            "rewards/chosen": out.chosen_rewards.mean().item(),
            "rewards/rejected": out.rejected_rewards.mean().item(),
            "rewards/margins": (out.chosen_rewards - out.rejected_rewards).mean().item(),
            "rewards/accuracies": (out.chosen_rewards > out.rejected_rewards).float().mean().item(),
            "logps/chosen": pc.detach().mean().item(),
            "logps/rejected": pr.detach().mean().item(),
        }
        if cfg.rpo_alpha > 0:
            nll = (weights * nll_per_row(out_p.chosen_full, out_p.chosen_full_count)).mean()
            metrics["nll_loss"] = nll.item()
            loss = loss + cfg.rpo_alpha * nll
        metrics["loss"] = loss.item()
        return loss, metrics, out_p.tokens

    summary = optimize(policy.module, examples, cfg, step)
    return _finish(policy, cfg, "dpo", summary, started, kinds)


def run_sft(cfg: SFTConfig) -> Path:
    started = time.perf_counter()
    device = setup_torch(cfg)
    loaded = read_rows(Path(cfg.dataset_path))
    scratch = parse_scratch(cfg.init_from_scratch)
    policy = load_policy(cfg.model_name_or_path, cfg.backend, cfg.bf16, cfg.use_peft, _lora(cfg), scratch)
    policy.module.to(device)
    enc = Encoder(policy, cfg.max_length)
    examples = sft_examples(loaded.sft, loaded.preference, cfg, enc)
    emit("start", objective="sft", rows=len(examples), rows_by_kind={}, device=str(device),
         num_parameters=sum(p.numel() for p in policy.module.parameters()), total_steps=_total(cfg, len(examples)))
    pad = policy.tokenizer.pad_token_id  # type: ignore[attr-defined]

    def step(batch_examples: Sequence[SFTExample]):
        batch = collate([(e.prompt, e.completion) for e in batch_examples], pad)
        ids, mask, cmask = batch.input_ids.to(device), batch.attention_mask.to(device), batch.completion_mask.to(device)
        batch.input_ids, batch.completion_mask = ids, cmask
        logits = policy.logits(policy.module, ids, mask)
        logps, counts = sequence_logps(logits, batch)
        loss = -logps.sum() / counts.sum().clamp(min=1)
        with torch.no_grad():
            hits = (logits[:, :-1].argmax(-1) == ids[:, 1:]).float() * cmask[:, 1:]
            accuracy = (hits.sum() / cmask[:, 1:].sum().clamp(min=1)).item()
        return loss, {"loss": loss.item(), "mean_token_accuracy": accuracy}, int(mask.sum())

    summary = optimize(policy.module, examples, cfg, step)
    return _finish(policy, cfg, "sft", summary, started, {})


def _finish(policy: Policy, cfg: TrainConfig, objective: str, summary: dict, started: float, kinds: dict) -> Path:
    lineage = {"base_model": str(Path(cfg.model_name_or_path).resolve()), "objective": objective,
               "dataset": str(Path(cfg.dataset_path).resolve()), "dataset_sha256": dataset_sha256(cfg.dataset_path),
               "rows_by_kind": kinds, "config": asdict(cfg)}
    policy.module.to("cpu").eval()
    with atomic_output_dir(cfg.output_dir, cfg.overwrite_output_dir) as tmp:
        save_policy(policy, tmp, lineage)
        if policy.kind == "tiny" and cfg.export_onnx:
            from .onnx_export import export_onnx

            export_onnx(policy.module, tmp / "onnx")
    out = Path(cfg.output_dir).resolve()
    emit("done", output_dir=str(out), runtime_s=round(time.perf_counter() - started, 3), **summary)
    log(f"saved {objective} checkpoint to {out}")
    return out


def _total(cfg: TrainConfig, rows: int) -> int:
    from .train_loop import total_steps_for

    return total_steps_for(cfg, rows)[0] if rows else 0


def _lora(cfg: TrainConfig) -> dict:
    return {"r": cfg.lora_r, "alpha": cfg.lora_alpha, "dropout": cfg.lora_dropout, "target_modules": cfg.lora_target_modules}


def parse_scratch(text: str) -> Optional[dict]:
    if not text:
        return None
    try:
        arch = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--init_from_scratch: not JSON ({exc.msg}); give e.g. '{{\"hidden_size\": 128}}'") from exc
    if not isinstance(arch, dict):
        raise ValueError("--init_from_scratch must be a JSON object of tiny-model architecture fields")
    return arch
