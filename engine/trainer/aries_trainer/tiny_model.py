"""A tiny decoder-only transformer with the Llama architecture, in plain PyTorch.

Parameter names, shapes and math follow Hugging Face's LlamaForCausalLM (RMSNorm, rotary position
embeddings with rotate-half, SwiGLU MLP), so a checkpoint written here is also a valid `llama`
checkpoint for `transformers`, and the ONNX export uses the optimum decoder layout that local
runtimes (this project's engine, transformers.js) load without a custom model class.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional

import torch
from torch import nn
import torch.nn.functional as F

# Pairs of (key, value) tensors per layer, each [batch, heads, past_len, head_dim].
PastKeyValues = list[tuple[torch.Tensor, torch.Tensor]]

# Added to attention scores at masked positions. Finite so that a row with every key masked
# (a left-padding query) gives a uniform softmax instead of NaN.
MASKED_SCORE = -1.0e9


@dataclass
class TinyLlamaConfig:
    vocab_size: int
    hidden_size: int = 128
    intermediate_size: int = 352
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    max_position_embeddings: int = 512
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    tie_word_embeddings: bool = True
    bos_token_id: Optional[int] = None
    eos_token_id: int = 0
    pad_token_id: int = 0

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def to_hf_dict(self) -> dict:
        """config.json content that `transformers` and transformers.js read as a Llama model."""
        d = asdict(self)
        d.update(
            {
                "architectures": ["LlamaForCausalLM"],
                "model_type": "llama",
                "hidden_act": "silu",
                "num_key_value_heads": self.num_attention_heads,
                "head_dim": self.head_dim,
                "attention_bias": False,
                "mlp_bias": False,
                "attention_dropout": 0.0,
                "initializer_range": 0.02,
                "pretraining_tp": 1,
                "rope_scaling": None,
                "torch_dtype": "float32",
                "use_cache": True,
                "aries_tiny": True,
            }
        )
        return d

    @classmethod
    def from_hf_dict(cls, d: dict) -> "TinyLlamaConfig":
        kv = d.get("num_key_value_heads", d["num_attention_heads"])
        if kv != d["num_attention_heads"]:
            raise ValueError("the tiny model does not implement grouped-query attention (num_key_value_heads must equal num_attention_heads)")
        fields = cls.__dataclass_fields__.keys()
        return cls(**{k: d[k] for k in fields if k in d})


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        variance = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(variance + self.eps))


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class RotaryEmbedding(nn.Module):
    def __init__(self, head_dim: int, theta: float) -> None:
        super().__init__()
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        freqs = position_ids.to(torch.float32).unsqueeze(-1) * self.inv_freq  # [B, T, D/2]
        emb = torch.cat((freqs, freqs), dim=-1)  # [B, T, D]
        return emb.cos().unsqueeze(1), emb.sin().unsqueeze(1)  # [B, 1, T, D]


class Attention(nn.Module):
    def __init__(self, cfg: TinyLlamaConfig) -> None:
        super().__init__()
        self.heads = cfg.num_attention_heads
        self.head_dim = cfg.head_dim
        size = cfg.hidden_size
        self.q_proj = nn.Linear(size, size, bias=False)
        self.k_proj = nn.Linear(size, size, bias=False)
        self.v_proj = nn.Linear(size, size, bias=False)
        self.o_proj = nn.Linear(size, size, bias=False)

    def forward(self, x, cos, sin, bias, past: Optional[tuple[torch.Tensor, torch.Tensor]]):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if past is not None:
            k = torch.cat((past[0], k), dim=2)
            v = torch.cat((past[1], v), dim=2)
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.head_dim) + bias
        probs = F.softmax(scores, dim=-1)
        out = torch.matmul(probs, v).transpose(1, 2).reshape(b, t, self.heads * self.head_dim)
        return self.o_proj(out), (k, v)


class MLP(nn.Module):
    def __init__(self, cfg: TinyLlamaConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: TinyLlamaConfig) -> None:
        super().__init__()
        self.self_attn = Attention(cfg)
        self.mlp = MLP(cfg)
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(self, x, cos, sin, bias, past):
        attn, present = self.self_attn(self.input_layernorm(x), cos, sin, bias, past)
        x = x + attn
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x, present


class LlamaBody(nn.Module):
    def __init__(self, cfg: TinyLlamaConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.rotary_emb = RotaryEmbedding(cfg.head_dim, cfg.rope_theta)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.Tensor] = None,
        past_key_values: Optional[PastKeyValues] = None,
    ) -> tuple[torch.Tensor, PastKeyValues]:
        """Returns the final (normed) hidden states [B, T, H] and the present key/values (past extended by this call).

        attention_mask covers past + current tokens ([B, past_len + T]); 1 = attend, 0 = padding.
        """
        b, t = input_ids.shape
        past_len = 0 if past_key_values is None else past_key_values[0][0].shape[2]
        if attention_mask is None:
            attention_mask = torch.ones(b, past_len + t, dtype=torch.long, device=input_ids.device)
        if position_ids is None:
            position_ids = torch.arange(past_len, past_len + t, device=input_ids.device).unsqueeze(0).expand(b, t)
        total = attention_mask.shape[1]
        key_index = torch.arange(total, device=input_ids.device)
        query_index = torch.arange(t, device=input_ids.device) + (total - t)
        causal = key_index.unsqueeze(0) <= query_index.unsqueeze(1)  # [T, S]
        allowed = causal.unsqueeze(0).unsqueeze(0) & (attention_mask.unsqueeze(1).unsqueeze(2) > 0)
        zero = torch.zeros((), dtype=torch.float32, device=input_ids.device)
        bias = torch.where(allowed, zero, zero + MASKED_SCORE)  # [B, 1, T, S]

        cos, sin = self.rotary_emb(position_ids)
        x = self.embed_tokens(input_ids)
        presents: PastKeyValues = []
        for i, layer in enumerate(self.layers):
            past = None if past_key_values is None else past_key_values[i]
            x, present = layer(x, cos, sin, bias, past)
            presents.append(present)
        return self.norm(x), presents


def init_weights(module: nn.Module) -> None:
    """Hugging Face's Llama initialisation (normal, std = initializer_range 0.02)."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)


class TinyLlamaForCausalLM(nn.Module):
    def __init__(self, cfg: TinyLlamaConfig) -> None:
        super().__init__()
        self.config = cfg
        self.model = LlamaBody(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        if cfg.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        self.apply(init_weights)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.Tensor] = None,
        past_key_values: Optional[PastKeyValues] = None,
    ) -> tuple[torch.Tensor, PastKeyValues]:
        """Returns logits [B, T, V] and the present key/values (past extended by this call).

        attention_mask covers past + current tokens ([B, past_len + T]); 1 = attend, 0 = padding.
        """
        hidden, presents = self.model(input_ids, attention_mask, position_ids, past_key_values)
        return self.lm_head(hidden), presents

    def num_parameters(self) -> int:
        return sum(p.numel() for p in {id(p): p for p in self.parameters()}.values())
