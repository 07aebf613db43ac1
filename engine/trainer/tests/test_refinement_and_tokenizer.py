from pathlib import Path

import pytest

from aries_trainer.objectives import refine_prompt
from aries_trainer.refinement import DEFAULT_TEMPLATE_PATH, ChatRefinement, load_template, render_refinement
from aries_trainer.hf_tokenizer import load_tokenizer


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


def test_chat_form_continues_the_conversation(tmp_path: Path):
    p = tmp_path / "chat.json"
    p.write_text('{"version": 1, "format": "chat", "instruction": "Check it and answer again."}')
    t = load_template(p)
    assert t == ChatRefinement("Check it and answer again.")
    asked = [{"role": "assistant", "content": "y"}, {"role": "user", "content": "Check it and answer again."}]
    assert refine_prompt("x", "y", t, "f:1") == [{"role": "user", "content": "x"}, *asked]
    chat = [{"role": "system", "content": "s"}, {"role": "user", "content": "x"}]
    assert refine_prompt(chat, "y", t, "f:1") == [*chat, *asked]
    assert len(chat) == 2  # the input is not mutated
    p.write_text('{"format": "chat"}')
    with pytest.raises(ValueError, match="needs \"instruction\""):
        load_template(p)
    p.write_text('{"format": "turns", "template": "{question}{previous}"}')
    with pytest.raises(ValueError, match="use \"text\" or \"chat\""):
        load_template(p)


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


def test_the_bundled_family_tokenizer_is_byte_level_with_fixed_ids(tiny_model):
    """write_tokenizer_files (built with `tokenizers`) keeps the bundled model's ids: byte b is id b,
    specials 256-260 — the bundled model's tokenizer.json encodes every text the same."""
    bundled = load_tokenizer(Path(__file__).resolve().parents[3] / "examples" / "arithmetic" / "model")
    made = load_tokenizer(tiny_model)
    for text in ["<|user|>Compute 68+29.<|end|><|assistant|>8+9=17, 6+2+1=9 #### 97<|end|>", "é ✓ 漢字 \n\t x", "<|pad|><|system|>"]:
        assert made.encode(text) == bundled.encode(text)
    assert made.encode("AZ") == [65, 90] and made.vocab_size == 261


def test_the_bundled_model_loads_with_transformers():
    from aries_trainer.policy import load_policy

    policy = load_policy(str(Path(__file__).resolve().parents[3] / "examples" / "arithmetic" / "model"))
    assert type(policy.module).__name__ == "LlamaForCausalLM" and policy.max_positions == 256
