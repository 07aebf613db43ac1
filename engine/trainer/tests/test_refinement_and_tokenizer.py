from pathlib import Path

import pytest

from aries_trainer.objectives import refine_prompt
from aries_trainer.refinement import DEFAULT_TEMPLATE_PATH, load_template, render_refinement
from aries_trainer.tokenizer import load_tokenizer


def test_shared_template_is_the_engine_file():
    assert DEFAULT_TEMPLATE_PATH.parts[-3:] == ("engine", "templates", "refinement.json")
    t = load_template()
    assert "{question}" in t and "{previous}" in t


def test_render_is_single_pass():
    out = render_refinement("Q: {question} / A: {previous}", "what is {previous}?", "42 {question}")
    assert out == "Q: what is {previous}? / A: 42 {question}"


def test_refine_prompt_rewrites_last_user_turn():
    t = "{question}|{previous}"
    chat = [{"role": "system", "content": "s"}, {"role": "user", "content": "x"}]
    assert refine_prompt(chat, "y", t, "f:1") == [{"role": "system", "content": "s"}, {"role": "user", "content": "x|y"}]
    assert chat[1]["content"] == "x"  # the input is not mutated
    assert refine_prompt("x", "y", t, "f:1") == "x|y"


def test_bad_template_file(tmp_path: Path):
    p = tmp_path / "t.json"
    p.write_text('{"template": "no placeholders"}')
    with pytest.raises(ValueError, match="must be a string containing"):
        load_template(p)


def test_tokenizer_round_trip_and_specials(tiny_model):
    tok = load_tokenizer(tiny_model)
    text = "<|user|>Ünïcode 🙂 12+30=?\n<|end|><|assistant|>"
    ids = tok.encode(text)
    assert ids[0] == 259 and tok.eos_token_id in ids and ids[-1] == 260
    assert tok.decode(ids) == text
    assert tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True) == "<|user|>hi<|end|><|assistant|>"


def test_hugging_face_path_where_transformers_is_installed(tmp_path):
    transformers = pytest.importorskip("transformers", reason="transformers is not installed on this machine (Debian has no package); this test runs where it is")
    from aries_trainer.policy import load_policy
    from conftest import make_tiny_model
    import torch

    folder = make_tiny_model(tmp_path / "m")
    # The tiny checkpoint is a valid `llama` checkpoint: transformers loads it and agrees on logits.
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True)
    tiny = load_policy(str(folder), backend="tiny")
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        assert torch.allclose(hf(ids).logits, tiny.module(ids)[0], atol=1e-4)
    policy = load_policy(str(folder), backend="hf")
    assert policy.kind == "hf"
