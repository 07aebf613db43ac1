"""PyTorch / Python reference values for engine/test/onnx-parity.test.ts.

Reads one JSON request on stdin, prints one JSON object on stdout. Run with /usr/bin/python3 and
PYTHONPATH=engine/trainer. Logits always come from a plain full-sequence forward pass of the tiny
model (no cache, no padding): what the onnx graph must reproduce with its cache and left padding.

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

from aries_trainer.chat_template import render_chat_template
from aries_trainer.policy import load_tiny
from aries_trainer.tokenizer import load_tokenizer


def main() -> None:
    request = json.load(sys.stdin)
    model_dir = Path(request["model_dir"])
    torch.set_num_threads(1)
    model = load_tiny(model_dir).module.eval()
    logits = []
    with torch.no_grad():
        for ids in request.get("sequences", []):
            out = model(torch.tensor([ids], dtype=torch.long))[0][0]
            logits.append(out.tolist())
    tokenizer = load_tokenizer(model_dir)
    texts = request.get("texts", [])
    ids = [tokenizer.encode(t) for t in texts]
    rendered = [render_chat_template(c["template"], c["messages"], c["add_generation_prompt"], **c.get("special", {}))
                for c in request.get("chats", [])]
    json.dump({"logits": logits, "ids": ids, "decoded": [tokenizer.decode(i) for i in ids], "rendered": rendered},
              sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
