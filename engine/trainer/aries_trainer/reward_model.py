"""The reward model `rm` trains: a Hugging Face *ForSequenceClassification model with one label.

It starts from a causal LM (its body; transformers adds a fresh `score` head in place of lm_head),
from a reward model (training goes on), or from scratch (a random Llama body over the tokenizer
files in the folder). The reward is the head's output at the last token that is not config.json's
pad_token_id — where transformers' sequence classifiers read, and so where the optimum export and
the engine's rm:onnx scorer read too.

What the reward model reads (the engine renders the same text, engine/src/score/score-text.ts):
the conversation `prompt + [{"role": "assistant", "content": response}]` through the tokenizer's
chat template (add_generation_prompt false), or, without a chat template, every message as
`role: content` joined by blank lines (the HTTP scorer's text mode). No token is added to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
from torch import nn

from .dataset import Prompt
from .hf_tokenizer import HFTokenizer, load_tokenizer
from .policy import SCRATCH_DEFAULTS, WEIGHT_FILES, check_tokenizer_folder, read_config


class RewardModelError(ValueError):
    """A folder that cannot start a reward model; the message names the file and what to do."""


def is_reward_model(config: dict) -> bool:
    return any(isinstance(a, str) and a.endswith("ForSequenceClassification") for a in config.get("architectures") or [])


def load_start(model_dir: str, init_from_scratch: Optional[dict], trust_remote_code: bool = False) -> tuple[nn.Module, HFTokenizer, str]:
    """The model `rm` starts from and how: 'scratch', 'policy body' or 'reward model'."""
    import transformers

    path = Path(model_dir)
    if not model_dir or not path.is_dir():
        raise RewardModelError(f"model_name_or_path {model_dir!r} is not a folder; pass a causal LM checkpoint, a reward model, "
                               "or a tokenizer folder with --init_from_scratch")
    check_tokenizer_folder(path)
    tokenizer = load_tokenizer(path, trust_remote_code)
    if init_from_scratch is not None:
        config = transformers.LlamaConfig(vocab_size=tokenizer.vocab_size, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                                          bos_token_id=None, num_labels=1, **{**SCRATCH_DEFAULTS, **init_from_scratch})
        return transformers.AutoModelForSequenceClassification.from_config(config), tokenizer, "scratch"
    config = read_config(path)
    if not any((path / f).is_file() for f in WEIGHT_FILES):
        raise RewardModelError(f"{path}: no weights (looked for {', '.join(WEIGHT_FILES)})")
    reward = is_reward_model(config)
    if reward and int(config.get("num_labels", len(config.get("id2label") or {}) or 1)) != 1:
        raise RewardModelError(f"{path / 'config.json'}: num_labels is {config.get('num_labels')}; the Bradley-Terry loss trains one reward column")
    try:
        model = transformers.AutoModelForSequenceClassification.from_pretrained(
            str(path), num_labels=1, local_files_only=True, trust_remote_code=trust_remote_code, pad_token_id=tokenizer.pad_token_id)
    except (OSError, ValueError) as exc:
        raise RewardModelError(f"{path}: transformers cannot load it as a sequence classifier ({str(exc).splitlines()[0]})") from exc
    return model, tokenizer, "reward model" if reward else "policy body"


def rewards(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """r(x, y) per row: column 0 of the logits."""
    return model(input_ids=input_ids, attention_mask=attention_mask).logits[:, 0]


def conversation(prompt: Prompt, response: str) -> list[dict]:
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    return messages + [{"role": "assistant", "content": response}]


def score_text(prompt: Prompt, response: str, tokenizer: HFTokenizer) -> str:
    """The text the reward model reads for one response (see the module docstring)."""
    messages = conversation(prompt, response)
    if tokenizer.has_chat_template:
        return tokenizer.apply_chat_template(messages, add_generation_prompt=False)
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in messages)
