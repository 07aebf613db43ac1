"""PyTorch / trainer reference values for engine/test/reward-onnx.test.ts.

Reads one JSON request on stdin, prints one JSON object on stdout. Run with the project venv's Python and
PYTHONPATH=engine/trainer. Each text is scored alone (no padding) by the PyTorch reward model, after
the trainer's own rendering (reward_model.score_text) and tokenizer: what the engine must reproduce.

Request: {"model_dir", "pairs": [{"prompt", "response"}, ...]}
Reply:   {"ids": [[token ids] per pair], "logits": [[num_labels floats] per pair]}
"""

from __future__ import annotations

import json
import sys

import torch

from aries_trainer.reward_model import load_start, score_text


def main() -> None:
    request = json.load(sys.stdin)
    torch.set_num_threads(1)
    model, tokenizer, _ = load_start(request["model_dir"], None)
    model.eval()
    ids = [tokenizer.encode(score_text(p["prompt"], p["response"], tokenizer)) for p in request["pairs"]]
    with torch.no_grad():
        logits = [model(input_ids=torch.tensor([i], dtype=torch.long)).logits[0].tolist() for i in ids]
    json.dump({"ids": ids, "logits": logits}, sys.stdout)


if __name__ == "__main__":
    main()
