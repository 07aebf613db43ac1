"""Tiny random-init Hugging Face checkpoints of real architectures, made here (nothing downloads).

    python engine/trainer/tests/tiny_hf.py --arch llama|qwen2|bundled-family --out DIR [--seed N]

`llama` (LlamaForCausalLM, untied embeddings) and `qwen2` (Qwen2ForCausalLM, tied embeddings,
q/k/v biases) use grouped-query attention (4 heads, 2 key/value heads), a byte-level BPE
tokenizer.json trained here with the `tokenizers` library on arithmetic text, and a ChatML chat
template whose turns end with `<|im_end|>\\n` (eos = <|im_end|>, pad = <|endoftext|>).
`bundled-family` is the bundled model's family (byte-level tokenizer, `<|user|>` template, tied
embeddings) at a test size. Weights are safetensors, as save_pretrained writes them.
The engine's tests run this file to get the same models (engine/test/support/hf-models.ts).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

TRAINER_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRAINER_DIR))

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
SIZE = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "max_position_embeddings": 256}
ARCHES = ("llama", "qwen2", "bundled-family")


def corpus() -> list[str]:
    lines = []
    for a in range(10, 100, 3):
        for b in range(10, 100, 7):
            s = a + b
            lines.append(f"Compute {a}+{b}. {a % 10}+{b % 10}={a % 10 + b % 10}, the sum is {s} #### {s}")
            lines.append(f"What is {a} plus {b}? Previous answer: #### {s + 1}. Check the previous answer and give a better one.")
    return lines


def chatml_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=480, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus(), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", chat_template=CHATML,
                                   clean_up_tokenization_spaces=False, model_max_length=SIZE["max_position_embeddings"],
                                   model_input_names=["input_ids", "attention_mask"])


def build(arch: str, out: Path, seed: int = 0, initializer_range: float | None = None, task: str = "causal-lm") -> Path:
    import torch
    import transformers

    out.mkdir(parents=True, exist_ok=True)
    if arch == "bundled-family":
        from aries_trainer.tokenizer import write_tokenizer_files

        write_tokenizer_files(out)
        tok = transformers.AutoTokenizer.from_pretrained(str(out))
    else:
        tok = chatml_tokenizer()
        tok.save_pretrained(str(out))
    common = dict(vocab_size=len(tok), eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None, **SIZE)
    if initializer_range is not None:
        # Larger than transformers' 0.02: the layers then outweigh the residual stream, so a tied
        # model does not just echo its last input token (used where varied greedy text matters).
        common["initializer_range"] = initializer_range
    if arch == "llama":
        config = transformers.LlamaConfig(tie_word_embeddings=False, **common)
    elif arch == "qwen2":
        config = transformers.Qwen2Config(tie_word_embeddings=True, **common)
    elif arch == "bundled-family":
        config = transformers.LlamaConfig(tie_word_embeddings=True, **{**common, "num_key_value_heads": SIZE["num_attention_heads"]})
    else:
        raise SystemExit(f"--arch {arch!r}: use one of {', '.join(ARCHES)}")
    torch.manual_seed(seed)
    if task == "reward":
        # A reward model as TRL's RewardTrainer and the Hub's RMs are: one logit, read at the last
        # token that is not padding (pad_token_id in the config).
        config.num_labels = 1
        model = transformers.AutoModelForSequenceClassification.from_config(config)
    else:
        model = transformers.AutoModelForCausalLM.from_config(config)
        model.generation_config = transformers.GenerationConfig(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model.save_pretrained(str(out), safe_serialization=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=ARCHES, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--initializer-range", type=float, default=None, help="Std of the random init (transformers' default 0.02).")
    parser.add_argument("--task", choices=("causal-lm", "reward"), default="causal-lm",
                        help="reward: an AutoModelForSequenceClassification with one label on the same backbone.")
    args = parser.parse_args()
    print(build(args.arch, args.out, args.seed, args.initializer_range, args.task))


if __name__ == "__main__":
    main()
