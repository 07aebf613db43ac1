"""The reward model: Bradley-Terry training through the CLI, its Hugging Face checkpoint and optimum's
ONNX layout, initialisation from a policy body, and where the reward is read. ONNX-vs-PyTorch parity
of the engine's scorer is checked from the engine (engine/test/reward-onnx.test.ts)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from conftest import write_jsonl
from test_training import run_cli

from aries_trainer.losses import bradley_terry_loss
from aries_trainer.hf_tokenizer import load_tokenizer
from aries_trainer.reward_model import load_start, rewards, score_text


def tensors(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def parity_rows(numbers) -> list[dict]:
    """Is n even? The right yes/no depends on the prompt, so the reward must read both."""
    return [{"id": f"p{n}", "kind": "direct", "prompt": [{"role": "user", "content": f"Is {n} even?"}],
             "chosen": "yes" if n % 2 == 0 else "no", "rejected": "no" if n % 2 == 0 else "yes"} for n in numbers]


def test_bradley_terry_matches_hand_computed_value():
    losses = bradley_terry_loss(torch.tensor([2.0, 0.0]), torch.tensor([1.0, 0.0]))
    assert abs(losses[0].item() - math.log(1 + math.exp(-1))) < 1e-6
    assert abs(losses[1].item() - math.log(2)) < 1e-6
    centred = bradley_terry_loss(torch.tensor([2.0]), torch.tensor([1.0]), center_coefficient=0.1)
    assert abs(centred.item() - (math.log(1 + math.exp(-1)) + 0.1 * 9)) < 1e-6


def test_rm_loss_falls_accuracy_rises_and_writes_the_sequence_classification_layout(tiny_model, tmp_path):
    data = write_jsonl(tmp_path / "pairs.jsonl", parity_rows(range(64)))
    out = tmp_path / "rm"
    _, lines, _ = run_cli("rm", "--model_name_or_path", str(tiny_model), "--dataset_path", str(data), "--output_dir", str(out),
                          "--learning_rate", "3e-3", "--num_train_epochs", "24", "--per_device_train_batch_size", "16",
                          "--logging_steps", "4", "--seed", "3")
    assert lines[0]["type"] == "start" and lines[0]["objective"] == "rm" and lines[0]["rows_by_kind"] == {"direct": 64, "refine": 0, "keep": 0}
    logs = [line for line in lines if line["type"] == "log"]
    assert all({"loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"} <= set(line) for line in logs)
    assert logs[-1]["loss"] < 0.5 * logs[0]["loss"], (logs[0], logs[-1])
    assert logs[-1]["rewards/accuracies"] > logs[0]["rewards/accuracies"]
    assert logs[-1]["rewards/accuracies"] >= 0.9
    assert lines[-1]["type"] == "done" and Path(lines[-1]["output_dir"]) == out.resolve()

    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["LlamaForSequenceClassification"] and config["model_type"] == "llama"
    assert config["id2label"] == {"0": "LABEL_0"}  # transformers writes num_labels as id2label
    assert config["aries_lineage"]["objective"] == "rm" and config["aries_lineage"]["init"] == "policy body"
    state = tensors(out)
    assert tuple(state["score.weight"].shape) == (1, config["hidden_size"]) and "lm_head.weight" not in state
    assert all(k.startswith(("model.", "score.")) for k in state)
    for name in ("tokenizer.json", "tokenizer_config.json", "onnx/model.onnx"):
        assert (out / name).is_file(), name

    onnx = pytest.importorskip("onnx")
    graph = onnx.load(str(out / "onnx/model.onnx")).graph
    assert [i.name for i in graph.input] == ["input_ids", "attention_mask"]
    assert [o.name for o in graph.output] == ["logits"]
    assert all(i.type.tensor_type.elem_type == onnx.TensorProto.INT64 for i in graph.input)

    # A reward model folder starts the next run as it is (score head included).
    model, _, start = load_start(str(out), None)
    assert start == "reward model" and torch.equal(model.score.weight, state["score.weight"])


def test_policy_body_initialises_the_reward_model(tiny_model):
    model, _, start = load_start(str(tiny_model), None)
    policy = tensors(tiny_model)
    assert start == "policy body"
    body = {k: v for k, v in model.state_dict().items() if k.startswith("model.")}
    assert body.keys() == {k for k in policy if k.startswith("model.")}
    assert all(torch.equal(v, policy[k]) for k, v in body.items())


def test_reward_is_read_at_the_last_attended_token_whatever_the_padding(tiny_model):
    torch.manual_seed(0)
    model, tok, _ = load_start(str(tiny_model), None)
    torch.nn.init.normal_(model.score.weight)
    model.eval()
    a, b = tok.encode("<|user|>Is 4 even?<|end|><|assistant|>yes<|end|>"), tok.encode("<|user|>x<|end|>")
    pad = tok.pad_token_id
    with torch.no_grad():
        alone = [rewards(model, torch.tensor([s]), torch.ones(1, len(s), dtype=torch.long)).item() for s in (a, b)]
        n = len(a) - len(b)
        right = rewards(model, torch.tensor([a, b + [pad] * n]), torch.tensor([[1] * len(a), [1] * len(b) + [0] * n])).tolist()
        left = rewards(model, torch.tensor([a, [pad] * n + b]), torch.tensor([[1] * len(a), [0] * n + [1] * len(b)])).tolist()
    assert max(abs(x - y) for x, y in zip(alone + alone, right + left)) < 1e-5


def test_score_text_uses_the_chat_template_or_role_lines(tiny_model):
    tok = load_tokenizer(tiny_model)
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Is 3 even?"}]
    assert score_text(chat, "no", tok) == "<|system|>Be brief.<|end|><|user|>Is 3 even?<|end|><|assistant|>no<|end|>"
    assert score_text("Is 3 even?", "no", tok) == "<|user|>Is 3 even?<|end|><|assistant|>no<|end|>"
    tok.hf.chat_template = None
    assert score_text(chat, "no", tok) == "system: Be brief.\n\nuser: Is 3 even?\n\nassistant: no"


def test_rm_needs_preference_rows_and_a_tokenizer(tiny_model, tmp_path):
    sft = write_jsonl(tmp_path / "sft.jsonl", [{"prompt": "q", "completion": "a"}])
    code, lines, _ = run_cli("rm", "--model_name_or_path", str(tiny_model), "--dataset_path", str(sft),
                             "--output_dir", str(tmp_path / "never"), check=False)
    assert code == 2 and "no preference rows" in lines[-1]["message"]
    pairs = write_jsonl(tmp_path / "pairs.jsonl", parity_rows(range(4)))
    code, lines, _ = run_cli("rm", "--model_name_or_path", str(tmp_path), "--dataset_path", str(pairs),
                             "--output_dir", str(tmp_path / "never"), check=False)
    assert code == 2 and "no tokenizer" in lines[-1]["message"]
    assert not (tmp_path / "never").exists()


def test_scratch_model_has_the_tokenizer_vocabulary(tiny_model):
    model, tok, start = load_start(str(tiny_model), {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32})
    assert start == "scratch" and type(model).__name__ == "LlamaForSequenceClassification"
    assert model.config.vocab_size == 261 and model.config.pad_token_id == tok.pad_token_id


def test_export_command_writes_a_reward_model_in_the_sequence_classification_layout(tiny_model, tmp_path):
    data = write_jsonl(tmp_path / "pairs.jsonl", parity_rows(range(8)))
    out = tmp_path / "rm"
    run_cli("rm", "--model_name_or_path", str(tiny_model), "--dataset_path", str(data), "--output_dir", str(out),
            "--max_steps", "1", "--export_onnx", "false")
    assert not (out / "onnx").exists()
    _, lines, _ = run_cli("export", "--model_name_or_path", str(out))
    assert lines[-1]["type"] == "done" and Path(lines[-1]["model"]) == (out / "onnx/model.onnx").resolve()
    onnx = pytest.importorskip("onnx")
    graph = onnx.load(str(out / "onnx/model.onnx")).graph
    assert [i.name for i in graph.input] == ["input_ids", "attention_mask"] and [o.name for o in graph.output] == ["logits"]
