"""The model's own tokenizer and chat template, through `transformers`, tokenizing rows the way TRL does.

A conversational row's prompt is the chat template with the generation prompt; its completion is
what the template adds for the assistant turn — the tokens of template(prompt + [answer]) after
the prompt's — so the completion ends the way the template ends a turn (`<|im_end|>\\n` in ChatML,
`<|end|>` for the bundled model). A string row is tokenized as prompt + completion + eos text.
This is TRL's DPOTrainer / SFTTrainer preprocessing, so our losses and TRL's see the same ids
(engine/trainer/tests/test_trl_parity.py checks it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union

Prompt = Union[str, list]


class HFTokenizer:
    def __init__(self, tok: Any, source: str = "") -> None:
        if tok.eos_token is None:
            raise ValueError(f"{source or 'the tokenizer'}: no eos_token; set one in tokenizer_config.json")
        self._tok = tok
        self.source = source
        self.eos_token: str = tok.eos_token
        self.eos_token_id: int = tok.eos_token_id
        self.pad_token_id: int = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        # Rows whose prompt tokens were not a prefix of prompt + completion (counted for the log, as TRL warns).
        self.prefix_mismatches = 0

    @property
    def vocab_size(self) -> int:
        return len(self._tok)

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self._tok, "chat_template", None))

    @property
    def hf(self) -> Any:
        """The transformers tokenizer itself (for TRL and the reward-model scorer)."""
        return self._tok

    def encode(self, text: str) -> list[int]:
        """Ids of text as it is: special tokens in it are matched, none are added."""
        return self._tok(text, add_special_tokens=False)["input_ids"]

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(ids)

    def apply_chat_template(self, messages: list[dict], add_generation_prompt: bool) -> str:
        self._need_template()
        return self._tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)

    def prompt_ids(self, prompt: Prompt) -> list[int]:
        if isinstance(prompt, str):
            return self._tok(text=prompt)["input_ids"]
        self._need_template()
        return self._tok.apply_chat_template(prompt, tokenize=True, return_dict=True, add_generation_prompt=True)["input_ids"]

    def completion_ids(self, prompt: Prompt, prompt_ids: list[int], completion: str) -> list[int]:
        """The completion's ids after `prompt`, as TRL derives them (see the module docstring)."""
        if isinstance(prompt, str):
            text = completion if completion.endswith(self.eos_token) else completion + self.eos_token
            full = self._tok(text=prompt + text)["input_ids"]
        else:
            full = self._tok.apply_chat_template(prompt + [{"role": "assistant", "content": completion}],
                                                 tokenize=True, return_dict=True)["input_ids"]
        if full[: len(prompt_ids)] != prompt_ids:
            self.prefix_mismatches += 1
        return full[len(prompt_ids):]

    def save_pretrained(self, path: str) -> None:
        self._tok.save_pretrained(path)

    def _need_template(self) -> None:
        if not self.has_chat_template:
            raise ValueError(f"{self.source or 'the tokenizer'} has no chat_template, so prompts must be strings "
                             "(export with --format string), not chat messages")


def load_tokenizer(model_dir: Path, trust_remote_code: bool = False) -> HFTokenizer:
    import transformers

    try:
        tok = transformers.AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{model_dir}: transformers cannot load the tokenizer ({str(exc).splitlines()[0]}); "
                         "the folder needs tokenizer.json (or the tokenizer's own files) and tokenizer_config.json") from exc
    return HFTokenizer(tok, str(model_dir))
