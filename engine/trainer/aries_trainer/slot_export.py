"""The slot-cache decoder graph (onnx/model_slots.onnx): the key/value cache is an input only.

optimum's graph takes past_key_values and returns present.* = past + the new columns, so every
decode step returns (and onnxruntime-node copies into JavaScript) the whole cache: at batch 8 and
450 cached tokens on a 50 M-parameter model that copy is most of the step. This graph takes the
cache as fixed-capacity buffers the engine owns and returns only the new columns; the engine writes
them into its buffers in place (docs/benchmarks.md, "The slot-cache graph").

Inputs: input_ids [B, S] int64, position_ids [B, S] int64, attention_mask [B, C + S] int64 (1 where
a cache slot, then each new token, is a real token), logits_to_keep [] int64, cache_key.{i} and
cache_value.{i} [B, kv_heads, C, head_dim] float32 (C slots, any of them unused and masked).
Outputs: logits [B, logits_to_keep, V] (the last positions), new_key.{i} and new_value.{i}
[B, kv_heads, S, head_dim]: the keys (after rotary embedding) and values of the S new tokens.
New tokens attend to the unmasked slots and causally to each other.

The graph is this module's own forward over the checkpoint's weights, for the architectures whose
attention it reproduces (Llama, Mistral without a sliding window, Qwen2 without one); others keep
optimum's graph only. Every export is checked in onnxruntime against transformers, step by step,
before it is renamed into place.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from .onnx_export import ExportError
from .progress import emit, log

SLOTS_FILE = "model_slots.onnx"
# One .onnx file holds at most 2 GB (protobuf); bigger models keep optimum's graph (with its
# external-data file) and are better served by an OpenAI-compatible server anyway.
MAX_BYTES = 2 * 10**9


class TooLarge(ExportError):
    """The float32 weights do not fit one ONNX file."""
SUPPORTED = ("llama", "mistral", "qwen2")


def unsupported_reason(config) -> str | None:
    """Why the checkpoint gets no slot graph, or None when it can have one."""
    kind = getattr(config, "model_type", None)
    if kind not in SUPPORTED:
        return f"model_type {kind!r} (the slot graph covers {', '.join(SUPPORTED)})"
    if kind == "qwen2" and getattr(config, "use_sliding_window", False):
        return "qwen2 with use_sliding_window"
    if kind == "mistral" and getattr(config, "sliding_window", None):
        return f"mistral with sliding_window {config.sliding_window}"
    return None


class SlotDecoder(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model
        c = model.config
        self.layers = c.num_hidden_layers
        self.heads = c.num_attention_heads
        self.kv_heads = getattr(c, "num_key_value_heads", None) or c.num_attention_heads
        self.head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
        self.group = self.heads // self.kv_heads

    def forward(self, input_ids, position_ids, attention_mask, logits_to_keep, *cache):
        from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

        b, s = input_ids.shape
        h_, kv, d, g = self.heads, self.kv_heads, self.head_dim, self.group
        base = self.model.model
        hidden = base.embed_tokens(input_ids)
        cos, sin = base.rotary_emb(hidden, position_ids)
        slots = cache[0].shape[2]
        # [B, 1, 1, S, C + S]: slots as the mask says; new tokens causally and as the mask says.
        real = attention_mask[:, None, None, None, :] > 0
        steps = torch.arange(s, device=input_ids.device)
        causal = torch.cat([torch.ones(s, slots, dtype=torch.bool), steps[:, None] >= steps[None, :]], dim=1)
        allowed = real & causal[None, None, None]
        bias = torch.where(allowed, torch.zeros((), dtype=hidden.dtype), torch.full((), torch.finfo(hidden.dtype).min, dtype=hidden.dtype))
        new = []
        for i, layer in enumerate(base.layers):
            attn = layer.self_attn
            x = layer.input_layernorm(hidden)
            q = attn.q_proj(x).view(b, s, h_, d).transpose(1, 2)
            k = attn.k_proj(x).view(b, s, kv, d).transpose(1, 2)
            v = attn.v_proj(x).view(b, s, kv, d).transpose(1, 2)
            q, k = apply_rotary_pos_emb(q, k, cos, sin)
            # Query heads of one key/value head side by side: no repeated copies of the cache.
            qg = q.reshape(b, kv, g * s, d)
            ck, cv = cache[2 * i], cache[2 * i + 1]
            from_slots = torch.matmul(qg, ck.transpose(2, 3)).view(b, kv, g, s, slots)
            from_new = torch.matmul(qg, k.transpose(2, 3)).view(b, kv, g, s, s)
            scores = torch.cat([from_slots, from_new], dim=-1) * attn.scaling + bias
            p = torch.softmax(scores, dim=-1).view(b, kv, g * s, slots + s)
            out = torch.matmul(p[..., :slots], cv) + torch.matmul(p[..., slots:], v)
            out = out.view(b, h_, s, d).transpose(1, 2).reshape(b, s, h_ * d)
            hidden = hidden + attn.o_proj(out)
            hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
            new += [k, v]
        hidden = base.norm(hidden[:, s - logits_to_keep:, :])
        return (self.model.lm_head(hidden), *new)


def run_export_slots(cfg) -> Path:
    """`export-slots`: bad input (exit 2) when the folder or architecture cannot have the graph."""
    import transformers

    folder = Path(cfg.model_name_or_path)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder / 'config.json'}: missing; --model_name_or_path must be a Hugging Face checkpoint folder")
    reason = unsupported_reason(transformers.AutoConfig.from_pretrained(str(folder), local_files_only=True))
    if reason:
        raise ValueError(f"{folder}: no slot-cache graph for {reason}; the engine runs optimum's graph (onnx/model.onnx) for it")
    path = export_slots(folder)
    emit("done", output_dir=str(path.parent.resolve()), model=str(path.resolve()))
    return path


def _names(layers: int) -> tuple[list[str], list[str]]:
    cache, new = [], []
    for i in range(layers):
        cache += [f"cache_key.{i}", f"cache_value.{i}"]
        new += [f"new_key.{i}", f"new_value.{i}"]
    return cache, new


def export_slots(checkpoint: Path, tolerance: float = 1e-3) -> Path:
    """Writes checkpoint/onnx/model_slots.onnx (checked; renamed into place). Raises ExportError."""
    import transformers

    checkpoint = Path(checkpoint)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(checkpoint), dtype=torch.float32, local_files_only=True).eval()
    reason = unsupported_reason(model.config)
    if reason:
        raise ExportError(f"{checkpoint}: no slot-cache graph for {reason}")
    size = sum(p.numel() for p in model.parameters()) * 4
    if size > MAX_BYTES:
        raise TooLarge(f"{checkpoint}: no slot-cache graph: {size / 1e9:.1f} GB of float32 weights is over the 2 GB one ONNX file holds")
    wrapper = SlotDecoder(model).eval()
    cache_names, new_names = _names(wrapper.layers)
    b, s, c = 2, 3, 5
    cache = [torch.zeros(b, wrapper.kv_heads, c, wrapper.head_dim) for _ in cache_names]
    args = (torch.zeros(b, s, dtype=torch.long), torch.arange(s).repeat(b, 1), torch.ones(b, c + s, dtype=torch.long),
            torch.tensor(1, dtype=torch.long), *cache)
    dynamic = {"input_ids": {0: "batch", 1: "new"}, "position_ids": {0: "batch", 1: "new"},
               "attention_mask": {0: "batch", 1: "slots_and_new"}, "logits": {0: "batch", 1: "kept"}}
    for name in cache_names:
        dynamic[name] = {0: "batch", 2: "slots"}
    for name in new_names:
        dynamic[name] = {0: "batch", 2: "new"}
    out_dir = checkpoint / "onnx"
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".model_slots-", suffix=".onnx", dir=out_dir)
    os.close(fd)
    try:
        import warnings

        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on shape arithmetic
            torch.onnx.export(wrapper, args, tmp, input_names=["input_ids", "position_ids", "attention_mask", "logits_to_keep", *cache_names],
                              output_names=["logits", *new_names], dynamic_axes=dynamic, opset_version=17, dynamo=False)
        diff = check_slots(model, Path(tmp))
        if not diff <= tolerance:
            raise ExportError(f"{checkpoint}: the slot-cache graph's logits differ from transformers' by {diff:.2e} (> {tolerance:g})")
        os.chmod(tmp, 0o644)
        path = out_dir / SLOTS_FILE
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    log(f"exported {path} (slot cache; max |logits diff| vs transformers over prefill + 4 steps {diff:.2e})")
    return path


def check_slots(model, path: Path, seed: int = 0) -> float:
    """Max |logits| difference against transformers for three left-padded prompts, prefill then 4 steps.

    Driven the way the engine drives it: slots with room to spare (unused ones masked), the new
    columns written in after each run.
    """
    import numpy as np
    import onnxruntime as ort

    config = model.config
    vocab = config.vocab_size
    rng = np.random.default_rng(seed)
    lengths = [5, 2, 7]
    b, width, capacity = len(lengths), max(lengths), 16
    ids = np.zeros((b, width), dtype=np.int64)
    mask = np.zeros((b, width), dtype=np.int64)
    pos = np.ones((b, width), dtype=np.int64)
    for r, n in enumerate(lengths):
        ids[r, width - n:] = rng.integers(0, vocab, n)
        mask[r, width - n:] = 1
        pos[r, width - n:] = np.arange(n)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    layers = config.num_hidden_layers
    kv = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    d = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    cache_names, new_names = _names(layers)
    buffers = [np.zeros((b, kv, capacity, d), dtype=np.float32) for _ in cache_names]
    slot_mask = np.zeros((b, capacity), dtype=np.int64)
    used = 0
    seq, seq_mask = ids.copy(), mask.copy()
    worst = 0.0
    feed_ids, feed_mask, feed_pos = ids, mask, pos
    for _ in range(5):
        n = feed_ids.shape[1]
        feeds = {"input_ids": feed_ids, "position_ids": feed_pos, "attention_mask": np.concatenate([slot_mask, feed_mask], axis=1),
                 "logits_to_keep": np.array(1, dtype=np.int64), **dict(zip(cache_names, buffers))}
        out = session.run(None, feeds)
        for buf, col in zip(buffers, out[1:]):
            buf[:, :, used:used + n] = col
        slot_mask[:, used:used + n] = feed_mask
        used += n
        with torch.no_grad():
            expected = model(input_ids=torch.from_numpy(seq), attention_mask=torch.from_numpy(seq_mask), use_cache=False).logits[:, -1].numpy()
        got = out[0][:, -1]
        worst = max(worst, float(np.abs(got - expected).max()))
        nxt = got.argmax(-1)[:, None].astype(np.int64)
        feed_pos = seq_mask.sum(1, keepdims=True).astype(np.int64)
        feed_ids, feed_mask = nxt, np.ones((b, 1), dtype=np.int64)
        seq, seq_mask = np.concatenate([seq, nxt], 1), np.concatenate([seq_mask, feed_mask], 1)
    return worst
