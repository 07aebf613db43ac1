"""End-to-end trainer behaviour on a tiny model: the CLI as the engine runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import TRAINER_DIR, write_jsonl

LOG_KEYS = {"step", "epoch", "loss", "rewards/chosen", "rewards/rejected", "rewards/margins",
            "rewards/accuracies", "logps/chosen", "logps/rejected", "learning_rate"}


def run_cli(*args: str, check: bool = True) -> tuple[int, list[dict], str]:
    env = {**os.environ, "PYTHONPATH": str(TRAINER_DIR)}
    proc = subprocess.run([sys.executable, "-m", "aries_trainer", *args], capture_output=True, text=True, env=env, timeout=600)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stderr}")
    return proc.returncode, lines, proc.stderr


def weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_dpo_loss_falls_margins_rise_and_params_change(tiny_model, preference_rows, tmp_path):
    data = write_jsonl(tmp_path / "pairs.jsonl", preference_rows)
    before = weights(tiny_model)
    out = tmp_path / "out"
    _, lines, _ = run_cli("dpo", "--model_name_or_path", str(tiny_model), "--dataset_path", str(data),
                          "--output_dir", str(out), "--learning_rate", "3e-3", "--num_train_epochs", "6",
                          "--per_device_train_batch_size", "8", "--logging_steps", "2", "--beta", "0.5",
                          "--export_onnx", "false")
    assert lines[0]["type"] == "start" and lines[0]["rows_by_kind"] == {"direct": 16, "refine": 16, "keep": 0}
    logs = [line for line in lines if line["type"] == "log"]
    assert all(LOG_KEYS <= set(line) for line in logs)
    assert logs[-1]["loss"] < logs[0]["loss"]
    assert logs[-1]["rewards/margins"] > logs[0]["rewards/margins"]
    assert logs[-1]["rewards/accuracies"] >= 0.9
    assert lines[-1]["type"] == "done" and Path(lines[-1]["output_dir"]) == out.resolve()
    after = weights(out)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) == len(before)
    # The starting model (the reference for this round) is untouched on disk.
    assert all(torch.equal(before[k], v) for k, v in weights(tiny_model).items())
    lineage = json.loads((out / "config.json").read_text())["aries_lineage"]
    assert lineage["objective"] == "dpo" and lineage["rows_by_kind"] == {"direct": 16, "refine": 16, "keep": 0}


def test_reference_model_is_frozen_during_training(tiny_model, preference_rows, tmp_path):
    from aries_trainer.objectives import Encoder, preference_examples, _pair_logps
    from aries_trainer.config import DPOConfig
    from aries_trainer.dataset import read_rows
    from aries_trainer.policy import load_policy

    policy = load_policy(str(tiny_model))
    ref = policy.reference(torch.device("cpu"))
    data = write_jsonl(tmp_path / "pairs.jsonl", preference_rows)
    cfg = DPOConfig(model_name_or_path=str(tiny_model), dataset_path=str(data), output_dir=str(tmp_path / "o"))
    examples = preference_examples(read_rows(data).preference, cfg, Encoder(policy, 128))[:4]
    with torch.no_grad():
        ref_before = _pair_logps(policy, ref, examples, torch.device("cpu")).chosen.clone()
    opt = torch.optim.SGD(policy.module.parameters(), lr=1.0)
    pc = _pair_logps(policy, lambda i, m: policy.logits(policy.module, i, m), examples, torch.device("cpu")).chosen
    (-pc.sum()).backward()
    opt.step()
    with torch.no_grad():
        ref_after = _pair_logps(policy, ref, examples, torch.device("cpu")).chosen
        pol_after = _pair_logps(policy, lambda i, m: policy.logits(policy.module, i, m), examples, torch.device("cpu")).chosen
    assert torch.equal(ref_before, ref_after)
    assert not torch.allclose(pol_after, ref_after)


def test_first_difference_span_counts_up_to_the_first_different_token():
    from aries_trainer.objectives import first_difference_span

    assert first_difference_span([5, 6, 7, 2], [5, 6, 8, 2]) == 3
    assert first_difference_span([5, 6, 7, 2], [9, 6, 7, 2]) == 1
    assert first_difference_span([5, 6, 2], [5, 6, 7, 2]) == 3
    assert first_difference_span([5, 6], [5, 6, 7]) is None  # one is a prefix of the other
    assert first_difference_span([5, 6], [5, 6]) is None


def test_preference_span_first_difference_scores_the_shared_start_and_first_error(tiny_model, tmp_path):
    """The preference term's log-probs cover the completion up to the first differing token (the same
    numbers as scoring those truncated completions alone); the NLL term still sees the whole chosen answer."""
    from aries_trainer.config import DPOConfig
    from aries_trainer.dataset import read_rows
    from aries_trainer.losses import collate, sequence_logps
    from aries_trainer.objectives import Encoder, _pair_logps, preference_examples
    from aries_trainer.policy import load_policy

    rows = [{"id": "d0", "kind": "direct", "prompt": [{"role": "user", "content": "Compute 63+16."}],
             "chosen": "3+6=9, 6+1=7 #### 79", "rejected": "3+6=9, 5+2=7 #### 79"},
            {"id": "d1", "kind": "direct", "prompt": [{"role": "user", "content": "Compute 12+30."}],
             "chosen": "2+0=2, 1+3=4 #### 42", "rejected": "7 #### 7"}]
    data = write_jsonl(tmp_path / "pairs.jsonl", rows)
    policy = load_policy(str(tiny_model))
    enc = Encoder(policy, 128)
    full = preference_examples(read_rows(data).preference, DPOConfig(dataset_path=str(data)), enc)
    cut = preference_examples(read_rows(data).preference, DPOConfig(dataset_path=str(data), preference_span="first_difference"), enc)
    assert [e.span for e in full] == [None, None]
    first = cut[0]
    k = first.span
    assert k is not None and first.chosen[: k - 1] == first.rejected[: k - 1] and first.chosen[k - 1] != first.rejected[k - 1]
    assert cut[1].span == 1  # differs at the first token
    model = lambda i, m: policy.logits(policy.module, i, m)  # noqa: E731
    with torch.no_grad():
        got = _pair_logps(policy, model, cut, torch.device("cpu"))
        whole = _pair_logps(policy, model, full, torch.device("cpu"))
        pad = policy.tokenizer.pad_token_id
        alone_c, n_c = sequence_logps(model(*_ids(collate([(e.prompt, e.chosen[: e.span]) for e in cut], pad))), collate([(e.prompt, e.chosen[: e.span]) for e in cut], pad))
        alone_r, _ = sequence_logps(model(*_ids(collate([(e.prompt, e.rejected[: e.span]) for e in cut], pad))), collate([(e.prompt, e.rejected[: e.span]) for e in cut], pad))
    assert torch.allclose(got.chosen, alone_c, atol=1e-5) and torch.allclose(got.rejected, alone_r, atol=1e-5)
    assert torch.equal(got.chosen_count, n_c)
    assert torch.allclose(got.chosen_full, whole.chosen, atol=1e-5) and torch.equal(got.chosen_full_count, whole.chosen_count)
    assert (got.chosen_count < got.chosen_full_count).all()


def _ids(batch):
    return batch.input_ids, batch.attention_mask


def test_direct_only_baseline_and_derived_refine_rows(tiny_model, preference_rows, tmp_path):
    data = write_jsonl(tmp_path / "pairs.jsonl", preference_rows)
    _, lines, _ = run_cli("dpo", "--model_name_or_path", str(tiny_model), "--dataset_path", str(data),
                          "--output_dir", str(tmp_path / "a"), "--pair_kinds", "direct", "--max_steps", "1", "--export_onnx", "false")
    assert lines[0]["rows_by_kind"] == {"direct": 16, "refine": 0, "keep": 0}
    _, lines, _ = run_cli("dpo", "--model_name_or_path", str(tiny_model), "--dataset_path", str(data),
                          "--output_dir", str(tmp_path / "b"), "--refine_from_direct", "true", "--max_steps", "1",
                          "--precompute_ref_log_probs", "true", "--loss_type", "ipo", "--rpo_alpha", "1", "--export_onnx", "false")
    assert lines[0]["rows_by_kind"] == {"direct": 16, "refine": 32, "keep": 0}
    assert "nll_loss" in lines[1]


def test_keep_rows_train_with_the_refinement_rows(tiny_model, preference_rows, tmp_path):
    """keep rows (refine(x, y_w) -> y_w over y_l, as `aries export` writes them with the keep kind) are
    read, trained with `both`, counted among the refinement-prompt rows by `refine`, left out by `direct`."""
    keep = [{**r, "id": r["id"] + "k", "kind": "keep",
             "prompt": [{"role": "user", "content": f"{r['prompt'][0]['content']}\nPrevious answer: {r['chosen']}\nCheck it."}]}
            for r in preference_rows if r["kind"] == "direct"]
    data = write_jsonl(tmp_path / "pairs.jsonl", preference_rows + keep)
    for kinds, expected in (("both", {"direct": 16, "refine": 16, "keep": 16}), ("refine", {"direct": 0, "refine": 16, "keep": 16}),
                            ("direct", {"direct": 16, "refine": 0, "keep": 0})):
        code, lines, err = run_cli("dpo", "--model_name_or_path", str(tiny_model), "--dataset_path", str(data), "--output_dir",
                                   str(tmp_path / kinds), "--pair_kinds", kinds, "--max_steps", "1", "--export_onnx", "false")
        assert code == 0, err
        assert lines[0]["rows_by_kind"] == expected


def test_sft_on_preference_rows_learns_chosen(tiny_model, preference_rows, tmp_path):
    data = write_jsonl(tmp_path / "pairs.jsonl", preference_rows)
    _, lines, _ = run_cli("sft", "--model_name_or_path", str(tiny_model), "--dataset_path", str(data),
                          "--output_dir", str(tmp_path / "s"), "--num_train_epochs", "8", "--learning_rate", "3e-3",
                          "--per_device_train_batch_size", "8", "--logging_steps", "4")
    logs = [line for line in lines if line["type"] == "log"]
    assert logs[-1]["loss"] < 0.7 * logs[0]["loss"]
    assert (tmp_path / "s" / "onnx" / "model.onnx").stat().st_size > 10_000


BAD_ROWS = [
    ('{"prompt": "q", "chosen": "a"', "invalid JSON"),
    ('{"chosen": "a", "rejected": "b"}', 'missing key "prompt"'),
    ('{"prompt": "q", "rejected": "b"}', 'missing key "chosen"'),
    ('{"prompt": 5, "chosen": "a", "rejected": "b"}', '"prompt" is int'),
    ('{"prompt": "q", "chosen": "a", "rejected": "b", "kind": "other"}', '"kind" is'),
    ('{"prompt": [{"role": "robot", "content": "x"}], "chosen": "a", "rejected": "b"}', "role is 'robot'"),
    ('{"prompt": "q", "chosen": [{"role": "user", "content": "a"}], "rejected": "b"}', "exactly one assistant message"),
    ('["not", "an", "object"]', "must be a JSON object"),
]


@pytest.mark.parametrize("bad,expected", BAD_ROWS)
def test_malformed_row_is_rejected_with_file_and_line(tiny_model, tmp_path, bad, expected):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "q", "chosen": "a", "rejected": "b"}\n\n' + bad + "\n", encoding="utf-8")
    code, lines, stderr = run_cli("dpo", "--model_name_or_path", str(tiny_model), "--dataset_path", str(path),
                                  "--output_dir", str(tmp_path / "never"), check=False)
    assert code == 2
    assert f"{path}:3:" in lines[-1]["message"] and expected in lines[-1]["message"]
    assert not (tmp_path / "never").exists()


def test_invalid_utf8_names_the_line(tiny_model, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"prompt": "q", "chosen": "a", "rejected": "b"}\n{"prompt": "\xff"}\n')
    code, lines, _ = run_cli("dpo", "--model_name_or_path", str(tiny_model), "--dataset_path", str(path),
                             "--output_dir", str(tmp_path / "never"), check=False)
    assert code == 2 and f"{path}:2: not valid UTF-8" in lines[-1]["message"]


def test_nan_loss_fails_without_writing(tiny_model, preference_rows, tmp_path):
    data = write_jsonl(tmp_path / "pairs.jsonl", preference_rows)
    code, lines, _ = run_cli("dpo", "--model_name_or_path", str(tiny_model), "--dataset_path", str(data),
                             "--output_dir", str(tmp_path / "never"), "--learning_rate", "1e30", "--max_grad_norm", "0",
                             "--num_train_epochs", "20", "--beta", "100", check=False)
    assert code == 3, lines[-1]
    assert "loss became" in lines[-1]["message"]
    assert not (tmp_path / "never").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".never")]


def test_existing_output_dir_is_refused_then_replaced(tiny_model, preference_rows, tmp_path):
    data = write_jsonl(tmp_path / "pairs.jsonl", preference_rows)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    code, lines, _ = run_cli("dpo", "--model_name_or_path", str(tiny_model), "--dataset_path", str(data),
                             "--output_dir", str(out), "--max_steps", "1", check=False)
    assert code == 2 and "already exists" in lines[-1]["message"] and (out / "keep.txt").exists()
    run_cli("dpo", "--model_name_or_path", str(tiny_model), "--dataset_path", str(data), "--output_dir", str(out),
            "--max_steps", "1", "--overwrite_output_dir", "true", "--export_onnx", "false")
    assert not (out / "keep.txt").exists() and (out / "model.safetensors").exists()


def test_config_file_is_validated(tiny_model, preference_rows, tmp_path):
    data = write_jsonl(tmp_path / "pairs.jsonl", preference_rows)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"model_name_or_path": str(tiny_model), "dataset_path": str(data), "output_dir": str(tmp_path / "o"), "beta": "high"}))
    code, lines, _ = run_cli("dpo", "--config", str(cfg), check=False)
    assert code == 2 and "'beta' must be float, got str" in lines[-1]["message"]
    cfg.write_text(json.dumps({"model_name_or_path": str(tiny_model), "dataset_path": str(data), "output_dir": str(tmp_path / "o"), "bta": 1}))
    code, lines, _ = run_cli("dpo", "--config", str(cfg), check=False)
    assert code == 2 and "unknown field 'bta'" in lines[-1]["message"]
    cfg.write_text(json.dumps({"model_name_or_path": str(tiny_model), "dataset_path": str(data), "output_dir": str(tmp_path / "o"), "max_steps": 1, "export_onnx": False}))
    code, lines, _ = run_cli("dpo", "--config", str(cfg), "--beta", "0.2")
    assert code == 0 and lines[-1]["type"] == "done"


def test_missing_model_folder_is_a_clear_error(preference_rows, tmp_path):
    data = write_jsonl(tmp_path / "pairs.jsonl", preference_rows)
    code, lines, _ = run_cli("dpo", "--model_name_or_path", str(tmp_path / "nope"), "--dataset_path", str(data),
                             "--output_dir", str(tmp_path / "o"), check=False)
    assert code == 2 and "is not a folder" in lines[-1]["message"]
