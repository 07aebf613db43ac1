"""Adapter giving a `transformers` tokenizer the small interface the trainer uses."""

from __future__ import annotations


class HFTokenizer:
    def __init__(self, tok) -> None:
        if tok.eos_token is None:
            raise ValueError("the tokenizer has no eos_token; set one in tokenizer_config.json")
        self._tok = tok
        self.eos_token = tok.eos_token
        self.eos_token_id = tok.eos_token_id
        self.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    def encode(self, text: str) -> list[int]:
        return self._tok(text, add_special_tokens=False)["input_ids"]

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(ids)

    def apply_chat_template(self, messages: list[dict], add_generation_prompt: bool) -> str:
        if not self._tok.chat_template:
            raise ValueError("this tokenizer has no chat_template; use string prompts")
        return self._tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)

    def save_pretrained(self, path: str) -> None:
        self._tok.save_pretrained(path)
