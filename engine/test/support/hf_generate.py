"""Greedy generation with transformers, the reference the engine's ONNX backend is checked against.

    python hf_generate.py < request.json > result.json

request: {"model_dir": str, "prompts": [str | [{"role", "content"}, ...]], "max_new_tokens": int}
A chat is rendered with the tokenizer's own chat template (add_generation_prompt=True); a plain
string is tokenized as it is. Each prompt runs alone (batch of one, no padding), with
`generate(do_sample=False)` and the checkpoint's generation_config (its eos ends a sequence).
result: {"prompt_ids": [[int]], "new_ids": [[int]] (eos not included), "texts": [str],
"finished": [bool] (ended by eos, not by max_new_tokens)}. texts are decoded as the engine decodes
(special tokens kept, no clean-up of spaces) so that a text re-encodes to the ids the model produced.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    import torch
    import transformers

    request = json.load(sys.stdin)
    tok = transformers.AutoTokenizer.from_pretrained(request["model_dir"], local_files_only=True)
    model = transformers.AutoModelForCausalLM.from_pretrained(request["model_dir"], local_files_only=True, torch_dtype=torch.float32)
    model.eval()
    eos = model.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos])
    out = {"prompt_ids": [], "new_ids": [], "texts": [], "finished": []}
    for prompt in request["prompts"]:
        if isinstance(prompt, str):
            ids = tok(prompt, add_special_tokens=False)["input_ids"]
        else:
            ids = tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True)
        with torch.no_grad():
            generated = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                       do_sample=False, max_new_tokens=request["max_new_tokens"])
        new = generated[0, len(ids):].tolist()
        finished = bool(new) and new[-1] in eos_ids
        if finished:
            new = new[:-1]
        out["prompt_ids"].append(ids)
        out["new_ids"].append(new)
        out["texts"].append(tok.decode(new, skip_special_tokens=False, clean_up_tokenization_spaces=False))
        out["finished"].append(finished)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
