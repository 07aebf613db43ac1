"""The slot-cache decoder graph (aries_trainer/slot_export.py): greedy decoding through it, driven as
the engine drives it (left-padded batch, buffers with unused slots, new columns written in), gives
transformers' greedy tokens on Llama and Qwen2; architectures it does not reproduce are refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from test_training import run_cli


def greedy_through_slots(path, config, prompts, steps, capacity):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    kv = config.num_key_value_heads
    d = config.hidden_size // config.num_attention_heads
    names = [f"cache_{kind}.{i}" for i in range(config.num_hidden_layers) for kind in ("key", "value")]
    b, width = len(prompts), max(len(p) for p in prompts)
    buffers = [np.zeros((b, kv, capacity, d), dtype=np.float32) for _ in names]
    slot_mask = np.zeros((b, capacity), dtype=np.int64)
    ids = np.zeros((b, width), dtype=np.int64)
    mask = np.zeros((b, width), dtype=np.int64)
    pos = np.ones((b, width), dtype=np.int64)
    for r, p in enumerate(prompts):
        ids[r, width - len(p):], mask[r, width - len(p):], pos[r, width - len(p):] = p, 1, np.arange(len(p))
    lengths = np.array([len(p) for p in prompts])
    used, out_tokens = 0, []
    for _ in range(steps):
        n = ids.shape[1]
        out = session.run(None, {"input_ids": ids, "position_ids": pos, "attention_mask": np.concatenate([slot_mask, mask], 1),
                                 "logits_to_keep": np.array(1, dtype=np.int64), **dict(zip(names, buffers))})
        assert out[0].shape == (b, 1, config.vocab_size)
        for buf, new in zip(buffers, out[1:]):
            assert new.shape == (b, kv, n, d)
            buf[:, :, used:used + n] = new
        slot_mask[:, used:used + n] = mask
        used += n
        nxt = out[0][:, -1].argmax(-1)
        out_tokens.append(nxt)
        ids, mask, pos = nxt[:, None].astype(np.int64), np.ones((b, 1), dtype=np.int64), lengths[:, None].astype(np.int64)
        lengths = lengths + 1
    return np.stack(out_tokens, 1)


@pytest.mark.parametrize("capacity", [40, 64])
@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_greedy_through_the_slot_graph_is_transformers_greedy(arch, capacity, tmp_path):
    from transformers import AutoModelForCausalLM

    from aries_trainer.slot_export import export_slots
    from tiny_hf import build

    # Weights wide enough that greedy has clear winners (near-uniform logits tie at float noise).
    hf_model = build(arch, tmp_path / arch, seed=1, initializer_range=0.3)

    path = export_slots(hf_model)
    assert path == hf_model / "onnx" / "model_slots.onnx"
    model = AutoModelForCausalLM.from_pretrained(str(hf_model), local_files_only=True).eval()
    prompts = [[5, 9, 13, 40, 2], [7, 3], [11, 12, 13, 14, 15, 16, 17, 18]]
    steps = 24
    got = greedy_through_slots(path, model.config, prompts, steps, capacity)
    width = max(map(len, prompts))
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
    attention = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    model.generation_config.eos_token_id = None  # plain argmax for all steps, end-of-text included (no min_new_tokens ban)
    with torch.no_grad():
        want = model.generate(input_ids=ids, attention_mask=attention, max_new_tokens=steps, do_sample=False, pad_token_id=0)[:, width:].numpy()
    assert (got == want).all(), f"slots {got.tolist()} vs transformers {want.tolist()}"


def test_architectures_it_does_not_reproduce_are_refused_with_exit_2(tmp_path):
    from transformers import Qwen2Config

    from aries_trainer.slot_export import unsupported_reason

    assert unsupported_reason(Qwen2Config(use_sliding_window=True)) == "qwen2 with use_sliding_window"
    assert unsupported_reason(Qwen2Config()) is None
    folder = tmp_path / "gpt2"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}))
    code, lines, stderr = run_cli("export-slots", "--model_name_or_path", str(folder), check=False)
    assert code == 2 and "model_type 'gpt2'" in lines[-1]["message"] and "optimum's graph" in lines[-1]["message"]
    assert not (folder / "onnx").exists()
    code, lines, _ = run_cli("export-slots", "--model_name_or_path", str(tmp_path / "missing"), check=False)
    assert code == 2 and "config.json: missing" in lines[-1]["message"]
