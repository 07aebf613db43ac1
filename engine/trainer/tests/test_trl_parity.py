"""Our DPO terms against TRL's DPOTrainer on the same model, reference model and batch of ARIES rows.

TRL tokenizes the rows itself (its own dataset preprocessing) and computes its loss and metrics with
`DPOTrainer.compute_loss`; we tokenize with our Encoder and compute with `dpo_step`, the function
the trainer's loop runs. Policy and reference are two different random-init checkpoints of the same
architecture, so rewards and margins are far from 0 and every term is exercised. The figures are
written to docs/training.md's parity table by `python engine/trainer/tests/test_trl_parity.py`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from conftest import make_tiny_model, write_jsonl

QUANTITIES = ("loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen", "logps/rejected")
# (our DPOConfig fields, TRL's DPOConfig fields); `rpo` is RPO's NLL term: TRL's loss_type ["sigmoid", "sft"].
LOSSES = {
    "sigmoid": ({"loss_type": "sigmoid"}, {"loss_type": ["sigmoid"]}),
    "ipo": ({"loss_type": "ipo"}, {"loss_type": ["ipo"]}),
    "rpo": ({"loss_type": "sigmoid", "rpo_alpha": 0.5, "nll_average": "token"}, {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, 0.5]}),
}
BETA = 0.2


def aries_rows() -> list[dict]:
    """Direct, refine and keep rows as `aries export` writes them (conversational), answers of different lengths."""
    rows = []
    for i, (a, b) in enumerate([(12, 30), (47, 38), (5, 61), (88, 9)]):
        q = f"Compute {a}+{b}."
        right, wrong = f"{a % 10}+{b % 10}={a % 10 + b % 10}, the sum is {a + b} #### {a + b}", f"#### {a + b + 10}"
        refine_x = f"{q}\nPrevious answer: {wrong}\nCheck the previous answer and give a better one."
        keep_x = f"{q}\nPrevious answer: {right}\nCheck the previous answer and give a better one."
        for kind, prompt in (("direct", q), ("refine", refine_x), ("keep", keep_x)):
            rows.append({"id": f"r1-t{i}-{kind}", "kind": kind, "prompt": [{"role": "user", "content": prompt}],
                         "chosen": [{"role": "assistant", "content": right}], "rejected": [{"role": "assistant", "content": wrong}],
                         "round": 1, "strategy": "verifier"})
    return rows


def trl_side(policy_dir: Path, ref_dir: Path, rows: list[dict], trl_fields: dict, out: Path):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig as TRLDPOConfig, DPOTrainer

    tok = AutoTokenizer.from_pretrained(str(policy_dir))
    policy = AutoModelForCausalLM.from_pretrained(str(policy_dir))
    ref = AutoModelForCausalLM.from_pretrained(str(ref_dir))
    # bf16=False: TRL 1.x defaults to bf16 autocast, on CPUs too, which alone moves logits by ~1e-3.
    args = TRLDPOConfig(output_dir=str(out), beta=BETA, per_device_train_batch_size=len(rows), report_to=[], use_cpu=True, bf16=False,
                        max_length=None, dataset_num_proc=None, **trl_fields)
    trainer = DPOTrainer(model=policy, ref_model=ref, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok)
    data = trainer.train_dataset
    batch = trainer.data_collator([data[i] for i in range(len(data))])
    trainer.model.train()  # TRL files the metrics under the mode the model is in
    loss = trainer.compute_loss(trainer.model, batch)
    metrics = {k: v[-1] for k, v in trainer._metrics["train"].items()}
    ids = [(data[i]["prompt_ids"], data[i]["chosen_ids"], data[i]["rejected_ids"]) for i in range(len(data))]
    return {"loss": loss.item(), **{k: metrics[k] for k in QUANTITIES if k != "loss"}}, ids


def our_side(policy_dir: Path, ref_dir: Path, rows: list[dict], our_fields: dict, tmp: Path):
    from aries_trainer.config import DPOConfig
    from aries_trainer.dataset import read_rows
    from aries_trainer.objectives import Encoder, dpo_step, pair_totals, preference_examples
    from aries_trainer.policy import load_policy
    from aries_trainer.train_loop import Totals

    data = write_jsonl(tmp / "rows.jsonl", rows)
    cfg = DPOConfig(model_name_or_path=str(policy_dir), dataset_path=str(data), beta=BETA, **our_fields)
    policy, ref = load_policy(str(policy_dir)), load_policy(str(ref_dir))
    examples = preference_examples(read_rows(data).preference, cfg, Encoder(policy, cfg.max_length))
    parts = [pair_totals(e) for e in examples]
    totals = Totals(rows=sum(t.rows for t in parts), tokens=sum(t.tokens for t in parts))
    policy.module.train()
    out = dpo_step(policy, cfg, lambda i, m: policy.logits(policy.module, i, m), lambda i, m: policy.logits(ref.module, i, m),
                   examples, totals, torch.device("cpu"))
    return {"loss": out.loss.item(), **{k: out.metrics[k] for k in QUANTITIES if k != "loss"}}, [(e.prompt, e.chosen, e.rejected) for e in examples]


def compare(arch: str, loss: str, tmp: Path) -> tuple[dict, dict]:
    policy_dir = make_tiny_model(tmp / f"{arch}-policy", seed=1, arch=arch)
    ref_dir = make_tiny_model(tmp / f"{arch}-ref", seed=2, arch=arch)
    ours_fields, trl_fields = LOSSES[loss]
    rows = aries_rows()
    theirs, trl_ids = trl_side(policy_dir, ref_dir, rows, trl_fields, tmp / "trl")
    ours, our_ids = our_side(policy_dir, ref_dir, rows, ours_fields, tmp)
    assert our_ids == trl_ids, "the two tokenizations differ"
    return ours, theirs


@pytest.mark.parametrize("loss", list(LOSSES))
@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_dpo_terms_equal_trl(arch, loss, tmp_path):
    ours, theirs = compare(arch, loss, tmp_path)
    for q in QUANTITIES:
        assert abs(ours[q] - theirs[q]) <= 1e-5, f"{q}: ours {ours[q]!r}, TRL {theirs[q]!r}"
    assert abs(theirs["rewards/margins"]) > 1e-3, "policy and reference must differ for the test to mean anything"


def main() -> None:
    """Prints the parity table (markdown) for docs/training.md."""
    import tempfile

    print("| model | loss | quantity | ours | TRL | abs diff |\n|---|---|---|---|---|---|")
    for arch in ("llama", "qwen2"):
        for loss in LOSSES:
            with tempfile.TemporaryDirectory() as tmp:
                ours, theirs = compare(arch, loss, Path(tmp))
            for q in QUANTITIES:
                print(f"| {arch} | {loss} | {q} | {ours[q]:.7f} | {theirs[q]:.7f} | {abs(ours[q] - theirs[q]):.1e} |")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
