"""Hugging Face checkpoints of real architectures (tiny, random-init Llama and Qwen2 with a trained BPE
tokenizer and a ChatML template) as policies: each objective trains them, the checkpoint reloads in
transformers, the ONNX export is optimum's and matches PyTorch; LoRA; and the folders that must be
refused before anything loads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from conftest import write_jsonl
from test_training import run_cli, weights
from test_trl_parity import aries_rows

OBJECTIVES = [
    ("dpo", ["--loss_type", "sigmoid"]),
    ("dpo", ["--loss_type", "ipo", "--precompute_ref_log_probs", "true"]),
    ("dpo", ["--rpo_alpha", "1", "--preference_span", "first_difference"]),
    ("sft", []),
]


@pytest.mark.parametrize("objective,flags", OBJECTIVES, ids=["dpo", "ipo", "aries-rpo", "sft"])
def test_each_objective_trains_and_saves_a_checkpoint_transformers_reloads(hf_model, objective, flags, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    data = write_jsonl(tmp_path / "rows.jsonl", aries_rows())
    out = tmp_path / "out"
    export = objective == "dpo" and "ipo" not in flags  # one export per architecture and loss is enough
    _, lines, _ = run_cli(objective, "--model_name_or_path", str(hf_model), "--dataset_path", str(data), "--output_dir", str(out),
                          "--learning_rate", "1e-3", "--num_train_epochs", "3", "--per_device_train_batch_size", "4", *flags,
                          "--export_onnx", "true" if export else "false")
    logs = [x for x in lines if x["type"] == "log"]
    assert logs[-1]["loss"] < logs[0]["loss"]
    before, after = weights(hf_model), weights(out)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    reloaded = AutoModelForCausalLM.from_pretrained(str(out), local_files_only=True)
    assert type(reloaded).__name__ == json.loads((hf_model / "config.json").read_text())["architectures"][0]
    assert AutoTokenizer.from_pretrained(str(out)).chat_template
    assert json.loads((out / "config.json").read_text())["aries_lineage"]["objective"] == objective
    if export:
        import onnx

        graph = onnx.load(str(out / "onnx" / "model.onnx")).graph
        names = [i.name for i in graph.input]
        assert names[:3] == ["input_ids", "attention_mask", "position_ids"] and "past_key_values.1.value" in names
        kv = next(i for i in graph.input if i.name == "past_key_values.0.key").type.tensor_type.shape.dim
        assert kv[1].dim_value == 2  # grouped-query attention: 2 key/value heads of 4
        assert sorted(p.name for p in (out / "onnx").iterdir()) == ["model.onnx", "model_slots.onnx"]
        slots = [i.name for i in onnx.load(str(out / "onnx" / "model_slots.onnx")).graph.input]
        assert slots[:4] == ["input_ids", "position_ids", "attention_mask", "logits_to_keep"] and "cache_value.1" in slots


def test_lora_trains_adapters_only_merges_them_and_keeps_the_reference_as_the_base(hf_model, tmp_path):
    data = write_jsonl(tmp_path / "rows.jsonl", aries_rows())
    out = tmp_path / "lora"
    _, lines, _ = run_cli("dpo", "--model_name_or_path", str(hf_model), "--dataset_path", str(data), "--output_dir", str(out),
                          "--use_peft", "true", "--lora_r", "4", "--lora_alpha", "8", "--lora_target_modules", "q_proj,v_proj",
                          "--learning_rate", "1e-2", "--num_train_epochs", "3", "--per_device_train_batch_size", "4", "--export_onnx", "false")
    start = lines[0]
    assert 0 < start["trainable_parameters"] < start["num_parameters"] / 10
    logs = [x for x in lines if x["type"] == "log"]
    assert logs[0]["rewards/margins"] == pytest.approx(0.0, abs=1e-6)  # the first step: policy = base = reference
    assert logs[-1]["loss"] < logs[0]["loss"]
    before, after = weights(hf_model), weights(out)
    assert before.keys() == after.keys()  # merged: a plain checkpoint, no adapter tensors
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(("q_proj" in k or "v_proj" in k) for k in changed)
    assert not list(out.glob("adapter_*"))


def test_reference_with_lora_is_the_base_with_adapters_off(hf_model):
    from aries_trainer.policy import LoraSettings, load_policy

    policy = load_policy(str(hf_model), lora=LoraSettings(r=4, alpha=8, dropout=0.0, target_modules="all-linear"))
    ref = policy.reference(torch.device("cpu"))
    ids, mask = torch.tensor([[5, 6, 7, 8]]), torch.ones(1, 4, dtype=torch.long)
    with torch.no_grad():
        for name, p in policy.module.named_parameters():
            if "lora_B" in name:
                p.add_(0.5)  # adapters that change the output
        adapted = policy.logits(policy.module, ids, mask)
        base = ref(ids, mask)
    from transformers import AutoModelForCausalLM

    plain = AutoModelForCausalLM.from_pretrained(str(hf_model)).eval()
    with torch.no_grad():
        expected = plain(input_ids=ids, attention_mask=mask).logits
    assert torch.allclose(base, expected, atol=1e-5) and not torch.allclose(adapted, expected, atol=1e-3)
    # No second copy: the reference shares every tensor with the policy.
    assert sum(p.numel() for p in policy.module.parameters()) < 1.2 * sum(p.numel() for p in plain.parameters())


def _dpo(model: Path, tmp_path: Path, *extra: str):
    data = write_jsonl(tmp_path / "rows.jsonl", aries_rows()[:3])
    return run_cli("dpo", "--model_name_or_path", str(model), "--dataset_path", str(data), "--output_dir", str(tmp_path / "never"),
                   "--max_steps", "1", *extra, check=False)


def test_a_reward_model_is_refused_as_a_policy(tmp_path):
    from transformers import LlamaConfig, LlamaForSequenceClassification
    from tiny_hf import chatml_tokenizer

    folder = tmp_path / "rm"
    tok = chatml_tokenizer()
    LlamaForSequenceClassification(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                               num_attention_heads=2, num_labels=1, pad_token_id=tok.pad_token_id)).save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    code, lines, _ = _dpo(folder, tmp_path)
    assert code == 2 and "LlamaForSequenceClassification" in lines[-1]["message"] and "not a causal LM" in lines[-1]["message"]
    assert not (tmp_path / "never").exists()


@pytest.fixture()
def llama(tmp_path: Path) -> Path:
    from conftest import make_tiny_model

    return make_tiny_model(tmp_path / "llama", arch="llama")


def test_an_encoder_is_refused_by_its_architecture(tmp_path, llama):
    folder = tmp_path / "bert"
    shutil.copytree(llama, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update({"model_type": "bert", "architectures": ["BertModel"]})
    (folder / "config.json").write_text(json.dumps(config))
    code, lines, _ = _dpo(folder, tmp_path)
    assert code == 2 and "['BertModel']" in lines[-1]["message"] and "not a causal LM" in lines[-1]["message"]


def test_a_checkpoint_without_a_tokenizer_is_refused(tmp_path, llama):
    folder = tmp_path / "notok"
    shutil.copytree(llama, folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"):
        (folder / name).unlink(missing_ok=True)
    code, lines, _ = _dpo(folder, tmp_path)
    assert code == 2 and "no tokenizer" in lines[-1]["message"] and str(folder) in lines[-1]["message"]


def test_remote_code_is_refused_unless_trusted_and_named(tmp_path, llama):
    folder = tmp_path / "custom"
    shutil.copytree(llama, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update({"model_type": "aries_custom", "architectures": ["AriesCustomForCausalLM"],
                   "auto_map": {"AutoConfig": "modeling_custom.CustomConfig", "AutoModelForCausalLM": "modeling_custom.CustomForCausalLM"}})
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "modeling_custom.py").write_text("raise SystemExit('this code must not run')\n")
    code, lines, _ = _dpo(folder, tmp_path)
    message = lines[-1]["message"]
    assert code == 2 and "trust_remote_code" in message and "modeling_custom.py" in message
    assert not (tmp_path / "never").exists()
