"""A tiny sequence-classification reward model: the tiny Llama body plus a `score` head.

Names and layout follow Hugging Face's LlamaForSequenceClassification (`model.*` body, `score.weight`
[num_labels, hidden], no bias; config.json with architectures ["LlamaForSequenceClassification"]),
so a checkpoint written here is also a valid `transformers` checkpoint. The reward is the head's
output at the last non-padding token. The engine's rm:onnx scorer reads what `rm` exports.

What the reward model reads (the engine renders the same text, engine/src/score/reward-onnx.ts):
the conversation `prompt + [{"role": "assistant", "content": response}]` through the tokenizer's
chat template (add_generation_prompt false), or, without a chat template, every message as
`role: content` joined by blank lines (the HTTP scorer's text mode). No token is added to it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from .dataset import Prompt
from .tiny_model import LlamaBody, TinyLlamaConfig, init_weights
from .tokenizer import ByteLevelTokenizer, load_tokenizer

ARCHITECTURE = "LlamaForSequenceClassification"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


class RewardModelError(ValueError):
    """A folder that cannot start a reward model; the message names the file and what to do."""


class TinyLlamaForSequenceClassification(nn.Module):
    def __init__(self, cfg: TinyLlamaConfig, num_labels: int = 1) -> None:
        super().__init__()
        self.config = cfg
        self.num_labels = num_labels
        self.model = LlamaBody(cfg)
        self.score = nn.Linear(cfg.hidden_size, num_labels, bias=False)
        self.apply(init_weights)

    def forward(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Logits [B, num_labels] at each row's last attended token.

        Positions count attended tokens only (cumsum of the mask), so left- and right-padded rows
        score the same as unpadded ones; with right padding they equal transformers' arange positions.
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        positions = (torch.cumsum(attention_mask, dim=-1) - 1).clamp(min=0)
        hidden, _ = self.model(input_ids, attention_mask, positions)
        index = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        last = (index * attention_mask).amax(dim=-1)  # the rightmost attended position
        pooled = torch.gather(hidden, 1, last.view(-1, 1, 1).expand(-1, 1, hidden.shape[-1])).squeeze(1)
        return self.score(pooled)


def config_dict(model: TinyLlamaForSequenceClassification, lineage: dict) -> dict:
    d = model.config.to_hf_dict()
    d.update({
        "architectures": [ARCHITECTURE],
        "num_labels": model.num_labels,
        "id2label": {str(i): f"LABEL_{i}" for i in range(model.num_labels)},
        "label2id": {f"LABEL_{i}": i for i in range(model.num_labels)},
        "use_cache": False,
        "aries_lineage": lineage,
    })
    return d


def is_reward_model(config: dict) -> bool:
    return ARCHITECTURE in (config.get("architectures") or [])


def load_start(model_dir: str, init_from_scratch: Optional[dict]) -> tuple[TinyLlamaForSequenceClassification, ByteLevelTokenizer, str]:
    """The model `rm` starts from and how: 'scratch', 'policy body' or 'reward model'."""
    path = Path(model_dir)
    if not model_dir or not path.is_dir():
        raise RewardModelError(f"model_name_or_path {model_dir!r} is not a folder; pass a tiny policy checkpoint, a tiny reward model, or a tokenizer folder with --init_from_scratch")
    tokenizer = load_tokenizer(path)
    if init_from_scratch is not None:
        if not isinstance(tokenizer, ByteLevelTokenizer) or "<|pad|>" not in tokenizer._added:
            raise RewardModelError(f"{path}: --init_from_scratch needs the tiny model's tokenizer files (aries_trainer.tokenizer.write_tokenizer_files)")
        cfg = TinyLlamaConfig(vocab_size=256 + len(tokenizer._added), eos_token_id=tokenizer.eos_token_id,
                              pad_token_id=tokenizer.pad_token_id, **init_from_scratch)
        return TinyLlamaForSequenceClassification(cfg), tokenizer, "scratch"
    config_path, weights = path / "config.json", path / "pytorch_model.bin"
    if not config_path.is_file():
        raise RewardModelError(f"{config_path}: missing; pass a tiny-model folder (or tokenizer files with --init_from_scratch)")
    if not weights.is_file():
        raise RewardModelError(f"{weights}: missing; tiny-model weights are read from pytorch_model.bin")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if not config.get("aries_tiny"):
        raise RewardModelError(f"{config_path}: not a tiny model (no aries_tiny); `rm` trains the built-in tiny reward model only")
    try:
        cfg = TinyLlamaConfig.from_hf_dict(config)
    except (KeyError, TypeError, ValueError) as exc:
        raise RewardModelError(f"{config_path}: not a tiny-model config ({exc})") from exc
    reward = is_reward_model(config)
    num_labels = int(config.get("num_labels", 1)) if reward else 1
    if num_labels != 1:
        raise RewardModelError(f"{config_path}: num_labels is {num_labels}; the Bradley-Terry loss trains one reward column")
    model = TinyLlamaForSequenceClassification(cfg, num_labels)
    state: dict[str, Any] = torch.load(weights, map_location="cpu")
    # A policy's body initialises ours; its lm_head has no place here. A reward model loads whole.
    wanted = {k: v for k, v in state.items() if k.startswith("model.") or (reward and k.startswith("score."))}
    missing, unexpected = model.load_state_dict(wanted, strict=False)
    missing = [k for k in missing if reward or not k.startswith("score.")]
    if missing or unexpected:
        raise RewardModelError(f"{weights}: weights do not match config.json (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model, tokenizer, "reward model" if reward else "policy body"


def conversation(prompt: Prompt, response: str) -> list[dict]:
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    return messages + [{"role": "assistant", "content": response}]


def score_text(prompt: Prompt, response: str, tokenizer: Any) -> str:
    """The text the reward model reads for one response (see the module docstring)."""
    messages = conversation(prompt, response)
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, add_generation_prompt=False)
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in messages)
