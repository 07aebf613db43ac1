"""PyTorch / Python reference values for engine/test/onnx-parity.test.ts.

Reads one JSON request on stdin, prints one JSON object on stdout. Run with the project venv's Python
and PYTHONPATH=engine/trainer. Logits always come from a plain full-sequence forward pass of the
model in transformers (no cache, no padding): what the onnx graph must reproduce with its cache and
left padding. Ids, decoded text and rendered chats come from transformers' tokenizer and
apply_chat_template: what the engine's @huggingface/tokenizers and @huggingface/jinja must match.

Request: {"model_dir", "sequences": [[ids...], ...], "texts": [...], "chats": [{"template",
          "messages", "add_generation_prompt", "special": {...}}]}
Reply:   {"logits": [[[V floats] per position] per sequence], "ids": [[...] per text],
          "decoded": [text per text], "rendered": [text per chat]}
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from aries_trainer.hf_tokenizer import load_tokenizer
from aries_trainer.policy import load_policy


def render(chat: dict) -> str:
    """The chat rendered by transformers' own chat-template code with an explicit template."""
    from transformers import PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models

    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE()), **chat.get("special", {}))
    return tok.apply_chat_template(chat["messages"], chat_template=chat["template"], tokenize=False,
                                   add_generation_prompt=chat["add_generation_prompt"])


def main() -> None:
    request = json.load(sys.stdin)
    model_dir = Path(request["model_dir"])
    torch.set_num_threads(1)
    model = load_policy(str(model_dir)).module.eval()
    logits = []
    with torch.no_grad():
        for ids in request.get("sequences", []):
            out = model(input_ids=torch.tensor([ids], dtype=torch.long)).logits[0]
            logits.append(out.tolist())
    tokenizer = load_tokenizer(model_dir)
    texts = request.get("texts", [])
    ids = [tokenizer.encode(t) for t in texts]
    rendered = [render(c) for c in request.get("chats", [])]
    json.dump({"logits": logits, "ids": ids, "decoded": [tokenizer.decode(i) for i in ids], "rendered": rendered},
              sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
