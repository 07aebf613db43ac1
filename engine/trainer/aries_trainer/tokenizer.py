"""Tokenizer files for the tiny model, and loading them for training.

The tiny model uses a byte-level tokenizer in the Hugging Face `tokenizers` format: 256 byte
tokens (GPT-2's byte-to-unicode table, no merges) plus a few special tokens. The engine reads the
same tokenizer.json with @huggingface/tokenizers, and a test checks both give the same ids.

When the `tokenizers` package is importable it is used. Where it is not (Debian ships no
python3-tokenizers), `ByteLevelTokenizer` encodes this exact layout — and only it: any other
tokenizer.json is refused with a message saying to install `tokenizers`.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Optional, Protocol

from .chat_template import render_chat_template

SPECIAL_TOKENS = ["<|end|>", "<|pad|>", "<|system|>", "<|user|>", "<|assistant|>"]
EOS_TOKEN = "<|end|>"
PAD_TOKEN = "<|pad|>"

# The chat template the tiny model is trained with. Rendered by jinja2 here and by
# @huggingface/jinja in the engine, from tokenizer_config.json.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable unicode characters (ByteLevel in HF)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, chars)}


def tokenizer_json() -> dict:
    byte_chars = bytes_to_unicode()
    vocab = {byte_chars[b]: b for b in range(256)}
    added = [
        {"id": 256 + i, "content": tok, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for i, tok in enumerate(SPECIAL_TOKENS)
    ]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": byte_level,
        "post_processor": None,
        "decoder": byte_level,
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
            "ignore_merges": False, "vocab": vocab, "merges": [],
        },
    }


def tokenizer_config_json() -> dict:
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": 512,
        "eos_token": EOS_TOKEN,
        "pad_token": PAD_TOKEN,
        "bos_token": None,
        "unk_token": None,
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "chat_template": CHAT_TEMPLATE,
    }


def write_tokenizer_files(out_dir: Path) -> None:
    (out_dir / "tokenizer.json").write_text(json.dumps(tokenizer_json(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    (out_dir / "tokenizer_config.json").write_text(json.dumps(tokenizer_config_json(), indent=2) + "\n", encoding="utf-8")
    (out_dir / "special_tokens_map.json").write_text(
        json.dumps({"eos_token": EOS_TOKEN, "pad_token": PAD_TOKEN}, indent=2) + "\n", encoding="utf-8")


class TextTokenizer(Protocol):
    eos_token: str
    eos_token_id: int
    pad_token_id: int

    def encode(self, text: str) -> list[int]: ...
    def decode(self, ids: list[int]) -> str: ...
    def apply_chat_template(self, messages: list[dict], add_generation_prompt: bool) -> str: ...


class ByteLevelTokenizer:
    """Encodes the byte-level, merge-free layout written by `tokenizer_json()`."""

    def __init__(self, spec: dict, config: dict, source: str) -> None:
        model = spec.get("model") or {}
        pre = spec.get("pre_tokenizer") or {}
        if (model.get("type") != "BPE" or model.get("merges") or spec.get("normalizer") is not None
                or pre.get("type") != "ByteLevel" or pre.get("use_regex") or pre.get("add_prefix_space")):
            raise ValueError(
                f"{source}: this tokenizer.json is not the tiny model's byte-level layout; "
                "install the `tokenizers` Python package to load it")
        byte_chars = bytes_to_unicode()
        vocab: dict[str, int] = model["vocab"]
        self._byte_ids = [vocab[byte_chars[b]] for b in range(256)]
        self._id_to_byte = {i: b for b, i in enumerate(self._byte_ids)}
        self._added = {t["content"]: t["id"] for t in spec.get("added_tokens", [])}
        self._id_to_added = {i: c for c, i in self._added.items()}
        self._split = re.compile("(" + "|".join(re.escape(t) for t in sorted(self._added, key=len, reverse=True)) + ")") if self._added else None
        self.chat_template = config.get("chat_template")
        self.eos_token = config["eos_token"]
        self.eos_token_id = self._added[self.eos_token]
        self.pad_token_id = self._added.get(config.get("pad_token") or "", self.eos_token_id)

    def encode(self, text: str) -> list[int]:
        parts = self._split.split(text) if self._split else [text]
        ids: list[int] = []
        for part in parts:
            if part in self._added:
                ids.append(self._added[part])
            else:
                ids.extend(self._byte_ids[b] for b in part.encode("utf-8"))
        return ids

    def decode(self, ids: list[int]) -> str:
        out: list[str] = []
        buf = bytearray()
        for i in ids:
            if i in self._id_to_byte:
                buf.append(self._id_to_byte[i])
            else:
                out.append(buf.decode("utf-8", errors="replace"))
                buf.clear()
                out.append(self._id_to_added.get(i, ""))
        out.append(buf.decode("utf-8", errors="replace"))
        return "".join(out)

    def apply_chat_template(self, messages: list[dict], add_generation_prompt: bool) -> str:
        if not self.chat_template:
            raise ValueError("tokenizer_config.json has no chat_template; use string prompts")
        return render_chat_template(self.chat_template, messages, add_generation_prompt, eos_token=self.eos_token)


class HFTokenizersTokenizer(ByteLevelTokenizer):
    """Same interface, encoding done by the `tokenizers` package."""

    def __init__(self, path: Path, spec: dict, config: dict) -> None:
        import tokenizers  # type: ignore

        self._tok = tokenizers.Tokenizer.from_file(str(path))
        self._added = {t["content"]: t["id"] for t in spec.get("added_tokens", [])}
        self.chat_template = config.get("chat_template")
        self.eos_token = config["eos_token"]
        self.eos_token_id = self._added.get(self.eos_token, self._tok.token_to_id(self.eos_token))
        pad: Optional[str] = config.get("pad_token")
        self.pad_token_id = self._tok.token_to_id(pad) if pad else self.eos_token_id

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(ids, skip_special_tokens=False)


def load_tokenizer(model_dir: Path) -> ByteLevelTokenizer:
    path = model_dir / "tokenizer.json"
    config_path = model_dir / "tokenizer_config.json"
    for p in (path, config_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: missing; a tiny-model folder needs tokenizer.json and tokenizer_config.json")
    spec = json.loads(path.read_text(encoding="utf-8"))
    config = json.loads(config_path.read_text(encoding="utf-8"))
    try:
        import tokenizers  # type: ignore  # noqa: F401
    except ImportError:
        return ByteLevelTokenizer(spec, config, str(path))
    return HFTokenizersTokenizer(path, spec, config)
