"""The tokenizer of the bundled model's family, made with the `tokenizers` library.

Byte level with no merges: 256 byte tokens (ids 0-255, GPT-2's byte-to-unicode table) and five
special tokens (256-260). A tiny model then needs no trained vocabulary, and every text encodes.
`write_tokenizer_files` writes it as any Hugging Face tokenizer folder (tokenizer.json,
tokenizer_config.json with the chat template); transformers, @huggingface/tokenizers (the engine)
and the trainer all read it from there.
"""

from __future__ import annotations

from pathlib import Path

SPECIAL_TOKENS = ["<|end|>", "<|pad|>", "<|system|>", "<|user|>", "<|assistant|>"]
EOS_TOKEN = "<|end|>"
PAD_TOKEN = "<|pad|>"

# The chat template of the bundled model's family.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


def byte_level_tokenizer():
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    alphabet = pre_tokenizers.ByteLevel.alphabet()  # the 256 printable stand-ins for bytes
    by_byte = _bytes_to_unicode()
    assert set(by_byte.values()) == set(alphabet)
    tok = Tokenizer(models.BPE(vocab={by_byte[b]: b for b in range(256)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    return tok


def write_tokenizer_files(out_dir: Path) -> None:
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(tokenizer_object=byte_level_tokenizer(), eos_token=EOS_TOKEN, pad_token=PAD_TOKEN,
                                   chat_template=CHAT_TEMPLATE, clean_up_tokenization_spaces=False, model_max_length=512,
                                   # as Llama's and Qwen's tokenizers say: no token_type_ids, which
                                   # decoders' generate() refuses (transformers serve passes them on)
                                   model_input_names=["input_ids", "attention_mask"])
    fast.save_pretrained(str(out_dir))


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table, which fixes each byte's id (the byte's value)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, chars)}
