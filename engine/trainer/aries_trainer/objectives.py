"""The two training objectives on ARIES rows: preference optimisation (DPO / IPO, optionally with an
NLL term) and self-refinement SFT. Both end in an atomic checkpoint transformers reloads, plus the
ONNX graph the engine generates the next round with."""

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
from .dataset import KINDS, PAIR_KINDS, DatasetError, PreferenceRow, Prompt, SFTRow, read_preference_rows, read_rows
from .losses import Batch, collate, nll_per_row, preference_loss, sequence_logps
from .policy import LoraSettings, Policy, atomic_output_dir, load_policy, save_policy
from .progress import emit, log, peak_memory_mb
from .refinement import ChatRefinement, Template, load_template, render_refinement
from .train_loop import Runtime, StepOutput, Totals, Trained, emit_start, optimize


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


def refine_prompt(prompt: Prompt, previous: str, template: Template, where: str) -> Prompt:
    """refine(x, y): text form, the string prompt or the chat's last user turn rewritten; chat form, the chat continued."""
    if isinstance(template, ChatRefinement):
        chat = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else copy.deepcopy(prompt)
        return [*chat, {"role": "assistant", "content": previous}, {"role": "user", "content": template.instruction}]
    if isinstance(prompt, str):
        return render_refinement(template, prompt, previous)
    users = [i for i, m in enumerate(prompt) if m["role"] == "user"]
    if not users:
        raise DatasetError(f"{where}: cannot build a refinement prompt: the chat has no user message")
    out = copy.deepcopy(prompt)
    out[users[-1]]["content"] = render_refinement(template, prompt[users[-1]]["content"], previous)
    return out


class Encoder:
    """Rows -> token ids the way TRL tokenizes them (hf_tokenizer.py); cuts over-long prompts from the left."""

    def __init__(self, policy: Policy, max_length: int) -> None:
        self.tok = policy.tokenizer
        self.max_length = min(max_length, policy.max_positions)
        self.truncated = 0

    def encode(self, prompt: Prompt, completions: Sequence[str], where: str) -> tuple[list[int], list[list[int]]]:
        try:
            p = self.tok.prompt_ids(prompt)
            cs = [self.tok.completion_ids(prompt, p, c) for c in completions]
        except ValueError as exc:  # a chat prompt for a model without a chat template, a template that raises
            raise DatasetError(f"{where}: {exc}") from exc
        return self.fit(p, *cs)

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

    def report(self) -> None:
        if self.truncated:
            log(f"warning: {self.truncated} rows were longer than max_length={self.max_length} and were cut")
        if self.tok.prefix_mismatches:
            log(f"warning: for {self.tok.prefix_mismatches} completions the prompt's tokens were not a prefix of prompt + completion "
                "(the tokenizer merged across the boundary); as TRL does, the completion is the tokens after the prompt's length")


def dataset_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _template(cfg: TrainConfig) -> Optional[Template]:
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
        p, (c, rj) = enc.encode(r.prompt, (r.chosen, r.rejected), r.where)
        span = first_difference_span(c, rj) if cfg.preference_span == "first_difference" else None
        out.append(PairExample(p, c, rj, weight[r.kind], r.kind, span=span))
    return out


def sft_examples(loaded_sft: list[SFTRow], loaded_pref: list[PreferenceRow], cfg: TrainConfig, enc: Encoder) -> tuple[list[SFTExample], dict[str, int]]:
    """Prompt/completion rows as they are; preference rows give y_w after their prompt (x for direct
    rows, refine(x, y_l) for refine rows, refine(x, y_w) for keep rows; refine rows are also derived
    from direct ones with refine_from_direct). Returns the examples and how many came from each kind."""
    template = _template(cfg)
    pairs: list[tuple[Prompt, str, str, str]] = [(r.prompt, r.completion, r.where, "completion") for r in loaded_sft]
    for r in loaded_pref:
        pairs.append((r.prompt, r.chosen, r.where, r.kind))
        if template is not None and r.kind == "direct":
            pairs.append((refine_prompt(r.prompt, r.rejected, template, r.where), r.chosen, r.where, "refine"))
    out, kinds = [], {k: 0 for k in (*KINDS, "completion")}
    for prompt, completion, where, kind in pairs:
        p, (c,) = enc.encode(prompt, (completion,), where)
        out.append(SFTExample(p, c))
        kinds[kind] += 1
    return out, {k: n for k, n in kinds.items() if n or k in KINDS}


def _pair_logps(policy: Policy, module, batch_examples: Sequence[PairExample], device: torch.device) -> PairLogps:
    n = len(batch_examples)
    seqs = [(e.prompt, e.chosen) for e in batch_examples] + [(e.prompt, e.rejected) for e in batch_examples]
    batch = collate(seqs, policy.tokenizer.pad_token_id)
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


def precompute_reference(policy: Policy, examples: list[PairExample], runtime: Runtime, bs: int) -> None:
    """pi_ref is the policy before any update, so its log-probs are computed once, up front; each
    process computes a share of the rows and all of them receive every value."""
    module = policy.module.to(runtime.device)
    ref = lambda ids, mask: policy.logits(module, ids, mask)  # noqa: E731
    mine = list(range(runtime.rank, len(examples), runtime.world))
    values: list[tuple[int, float, float]] = []
    module.eval()
    with torch.no_grad():
        for i in range(0, len(mine), bs):
            idx = mine[i : i + bs]
            out = _pair_logps(policy, ref, [examples[j] for j in idx], runtime.device)
            values.extend(zip(idx, out.chosen.tolist(), out.rejected.tolist()))
    for j, a, b in runtime.gather(values):
        examples[j].ref_chosen, examples[j].ref_rejected = a, b


def pair_totals(e: PairExample) -> Totals:
    return Totals(rows=1.0, tokens=float(len(e.chosen)))


def dpo_step(policy: Policy, cfg: DPOConfig, model_fn, ref_fn, batch_examples: Sequence[PairExample], totals: Totals,
             device: torch.device) -> StepOutput:
    """The ARIES preference objective on one micro-batch: a (weighted) DPO or IPO term per row, plus
    rpo_alpha × the NLL of the chosen answer. `ref_fn` None means the rows carry precomputed
    reference log-probs. Losses and metrics are divided by the step's Totals (train_loop.py)."""
    out_p = _pair_logps(policy, model_fn, batch_examples, device)
    pc, pr, cc, cr = out_p.chosen, out_p.rejected, out_p.chosen_count, out_p.rejected_count
    if ref_fn is None:
        rc = torch.tensor([e.ref_chosen for e in batch_examples], device=device)
        rr = torch.tensor([e.ref_rejected for e in batch_examples], device=device)
    else:
        with torch.no_grad():
            out_r = _pair_logps(policy, ref_fn, batch_examples, device)
            rc, rr = out_r.chosen, out_r.rejected
    if cfg.loss_type == "ipo":  # IPO compares length-averaged log-probs (as TRL does)
        out = preference_loss(pc / cc, pr / cr, rc / cc, rr / cr, cfg.beta, "ipo")
    else:
        out = preference_loss(pc, pr, rc, rr, cfg.beta, "sigmoid", cfg.label_smoothing)
    weights = torch.tensor([e.weight for e in batch_examples], device=device)
    loss = (weights * out.losses).sum() / totals.rows
    per_row = lambda t: t.detach().sum().item() / totals.rows  # noqa: E731
    # The implicit rewards beta * (log pi - log pi_ref) over the span, whatever the loss (IPO included), as TRL logs them.
    chosen_r, rejected_r = cfg.beta * (pc - rc).detach(), cfg.beta * (pr - rr).detach()
    metrics = {
        "rewards/chosen": per_row(chosen_r),
        "rewards/rejected": per_row(rejected_r),
        "rewards/margins": per_row(chosen_r - rejected_r),
        "rewards/accuracies": per_row((chosen_r > rejected_r).float()),
        "logps/chosen": per_row(pc),
        "logps/rejected": per_row(pr),
    }
    if cfg.rpo_alpha > 0:
        if cfg.nll_average == "token":
            nll = (weights * -out_p.chosen_full).sum() / totals.tokens
        else:
            nll = (weights * nll_per_row(out_p.chosen_full, out_p.chosen_full_count)).sum() / totals.rows
        metrics["nll_loss"] = nll.item()
        loss = loss + cfg.rpo_alpha * nll
    return StepOutput(loss, metrics, out_p.tokens)


def run_dpo(cfg: DPOConfig) -> Path:
    started = time.perf_counter()
    runtime = Runtime(cfg)
    loaded = read_preference_rows(cfg.dataset_path, "dpo")
    policy = load_policy(cfg.model_name_or_path, bf16=cfg.bf16, trust_remote_code=cfg.trust_remote_code, lora=_lora(cfg))
    enc = Encoder(policy, cfg.max_length)
    examples = preference_examples(loaded.preference, cfg, enc)
    kinds = {k: sum(e.kind == k for e in examples) for k in KINDS}
    emit_start("dpo", policy.module, runtime, cfg, len(examples), kinds)
    enc.report()
    device = runtime.device
    # pi_ref: log-probs computed once up front, or a frozen copy (the base with adapters off, with LoRA)
    # run beside the policy — never the DDP-wrapped policy itself.
    ref_fn = None if cfg.precompute_ref_log_probs else policy.reference(device)
    if ref_fn is None:
        precompute_reference(policy, examples, runtime, cfg.per_device_train_batch_size * 2)

    def step(model, batch_examples: Sequence[PairExample], totals: Totals) -> StepOutput:
        return dpo_step(policy, cfg, lambda ids, mask: policy.logits(model, ids, mask), ref_fn, batch_examples, totals, device)

    trained = optimize(policy.module, examples, cfg, step, pair_totals, runtime)
    return _finish(policy, cfg, "dpo", trained, started, kinds, runtime)


def run_sft(cfg: SFTConfig) -> Path:
    started = time.perf_counter()
    runtime = Runtime(cfg)
    loaded = read_rows(Path(cfg.dataset_path))
    policy = load_policy(cfg.model_name_or_path, bf16=cfg.bf16, trust_remote_code=cfg.trust_remote_code, lora=_lora(cfg),
                         init_from_scratch=parse_scratch(cfg.init_from_scratch))
    enc = Encoder(policy, cfg.max_length)
    examples, kinds = sft_examples(loaded.sft, loaded.preference, cfg, enc)
    emit_start("sft", policy.module, runtime, cfg, len(examples), kinds)
    enc.report()
    pad, device = policy.tokenizer.pad_token_id, runtime.device

    def count(e: SFTExample) -> Totals:
        return Totals(rows=1.0, tokens=float(len(e.completion)))

    def step(model, batch_examples: Sequence[SFTExample], totals: Totals) -> StepOutput:
        batch = collate([(e.prompt, e.completion) for e in batch_examples], pad)
        ids, mask, cmask = batch.input_ids.to(device), batch.attention_mask.to(device), batch.completion_mask.to(device)
        batch.input_ids, batch.completion_mask = ids, cmask
        logits = policy.logits(model, ids, mask)
        logps, _ = sequence_logps(logits, batch)
        loss = -logps.sum() / totals.tokens
        with torch.no_grad():
            hits = (logits[:, :-1].argmax(-1) == ids[:, 1:]).float() * cmask[:, 1:]
        return StepOutput(loss, {"mean_token_accuracy": hits.sum().item() / totals.tokens}, int(mask.sum()))

    trained = optimize(policy.module, examples, cfg, step, count, runtime)
    return _finish(policy, cfg, "sft", trained, started, kinds, runtime)


def _finish(policy: Policy, cfg: TrainConfig, objective: str, trained: Trained, started: float, kinds: dict, runtime: Runtime) -> Path:
    out = Path(cfg.output_dir).resolve()
    if runtime.is_main:
        lineage = {"base_model": str(Path(cfg.model_name_or_path).resolve()), "objective": objective,
                   "dataset": str(Path(cfg.dataset_path).resolve()), "dataset_sha256": dataset_sha256(cfg.dataset_path),
                   "rows_by_kind": kinds, "processes": runtime.world, "config": asdict(cfg)}
        policy.module = trained.module
        with atomic_output_dir(cfg.output_dir, cfg.overwrite_output_dir) as tmp:
            saved = save_policy(policy, tmp, lineage, trained.state_dict)
            if cfg.export_onnx:
                from .onnx_export import export_and_check

                export_and_check(saved, tmp, policy.tokenizer.vocab_size)
        emit("done", output_dir=str(out), runtime_s=round(time.perf_counter() - started, 3), peak_memory_mb=peak_memory_mb(), **trained.summary)
        log(f"saved {objective} checkpoint to {out}")
    runtime.wait()
    return out


def _lora(cfg: TrainConfig) -> Optional[LoraSettings]:
    if not cfg.use_peft:
        return None
    return LoraSettings(r=cfg.lora_r, alpha=cfg.lora_alpha, dropout=cfg.lora_dropout, target_modules=cfg.lora_target_modules)


def parse_scratch(text: str) -> Optional[dict]:
    if not text:
        return None
    try:
        arch = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--init_from_scratch: not JSON ({exc.msg}); give e.g. '{{\"hidden_size\": 128}}'") from exc
    if not isinstance(arch, dict):
        raise ValueError("--init_from_scratch must be a JSON object of Llama architecture fields")
    return arch
