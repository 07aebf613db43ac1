"""Loading the model being trained (tiny built-in or Hugging Face) and saving checkpoints atomically."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

import torch
from torch import nn

from .tiny_model import TinyLlamaConfig, TinyLlamaForCausalLM
from .tokenizer import ByteLevelTokenizer, load_tokenizer

TINY_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json")


class ModelError(ValueError):
    """A model folder that cannot be used; the message says which file and what to do."""


@dataclass
class Policy:
    """The trainable model plus what the training loop needs to know about it."""

    module: nn.Module
    tokenizer: object
    kind: str  # "tiny" | "hf"
    source: Path
    max_positions: int
    peft: bool = False

    def logits(self, module: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.kind == "tiny":
            return module(input_ids, attention_mask)[0]
        return module(input_ids=input_ids, attention_mask=attention_mask).logits

    def reference(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """A frozen copy of the policy as it is now (pi_ref). With LoRA, the base with adapters off."""
        if self.peft:
            module = self.module

            def with_adapters_off(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
                with module.disable_adapter():  # type: ignore[attr-defined]
                    return self.logits(module, ids, mask)

            return with_adapters_off
        frozen = copy.deepcopy(self.module).eval()
        for p in frozen.parameters():
            p.requires_grad_(False)
        return lambda ids, mask: self.logits(frozen, ids, mask)


def is_tiny(model_dir: Path) -> bool:
    try:
        return bool(json.loads((model_dir / "config.json").read_text(encoding="utf-8")).get("aries_tiny"))
    except (OSError, json.JSONDecodeError):
        return False


def load_tiny(model_dir: Path, init_from_scratch: Optional[dict] = None) -> Policy:
    tokenizer = load_tokenizer(model_dir)
    if init_from_scratch is not None:
        assert isinstance(tokenizer, ByteLevelTokenizer)
        cfg = TinyLlamaConfig(vocab_size=256 + len(tokenizer._added), eos_token_id=tokenizer.eos_token_id,
                              pad_token_id=tokenizer.pad_token_id, **init_from_scratch)
        return Policy(TinyLlamaForCausalLM(cfg), tokenizer, "tiny", model_dir, cfg.max_position_embeddings)
    config_path = model_dir / "config.json"
    weights = model_dir / "pytorch_model.bin"
    if not config_path.is_file():
        raise ModelError(f"{config_path}: missing; a model folder needs config.json")
    if not weights.is_file():
        raise ModelError(f"{weights}: missing; the tiny model's weights are read from pytorch_model.bin")
    try:
        cfg = TinyLlamaConfig.from_hf_dict(json.loads(config_path.read_text(encoding="utf-8")))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{config_path}: not a tiny-model config ({exc})") from exc
    module = TinyLlamaForCausalLM(cfg)
    state = torch.load(weights, map_location="cpu")
    missing, unexpected = module.load_state_dict(state, strict=False)
    missing = [k for k in missing if k != "lm_head.weight" or not cfg.tie_word_embeddings]
    if missing or unexpected:
        raise ModelError(f"{weights}: weights do not match config.json (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return Policy(module, tokenizer, "tiny", model_dir, cfg.max_position_embeddings)


def load_hf(model_dir: Path, bf16: bool, use_peft: bool, lora: dict) -> Policy:
    try:
        import transformers  # type: ignore
    except ImportError as exc:
        raise ModelError(f"{model_dir}: a Hugging Face model needs the `transformers` package; install it (pip install transformers) or use a tiny-model folder") from exc
    from .hf_tokenizer import HFTokenizer

    dtype = torch.bfloat16 if bf16 else torch.float32
    module = transformers.AutoModelForCausalLM.from_pretrained(str(model_dir), torch_dtype=dtype, local_files_only=True)
    tokenizer = HFTokenizer(transformers.AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True))
    if use_peft:
        try:
            import peft  # type: ignore
        except ImportError as exc:
            raise ModelError("use_peft needs the `peft` package; install it or drop --use_peft") from exc
        targets = lora["target_modules"]
        config = peft.LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"], task_type="CAUSAL_LM",
                                 target_modules="all-linear" if targets == "all-linear" else targets.split(","))
        module = peft.get_peft_model(module, config)
    positions = getattr(module.config, "max_position_embeddings", 4096)
    return Policy(module, tokenizer, "hf", model_dir, positions, peft=use_peft)


def load_policy(model_dir: str, backend: str = "auto", bf16: bool = False, use_peft: bool = False,
                lora: Optional[dict] = None, init_from_scratch: Optional[dict] = None) -> Policy:
    path = Path(model_dir)
    if not model_dir or not path.is_dir():
        raise ModelError(f"model_name_or_path {model_dir!r} is not a folder; pass a model folder (the bundled one is examples/arithmetic/model)")
    if backend == "tiny" or (backend == "auto" and (is_tiny(path) or init_from_scratch is not None)):
        return load_tiny(path, init_from_scratch)
    return load_hf(path, bf16, use_peft, lora or {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": "all-linear"})


@contextlib.contextmanager
def atomic_output_dir(output_dir: str, overwrite: bool) -> Iterator[Path]:
    """Yields a temporary sibling folder; on success it becomes output_dir in one rename.
    On any error the temporary folder is removed and output_dir is left as it was."""
    final = Path(output_dir).resolve()
    if final.exists() and not overwrite:
        raise ModelError(f"{final}: output_dir already exists; choose a new folder or pass --overwrite_output_dir true")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; a checkpoint should look like any folder
    try:
        yield tmp
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save_policy(policy: Policy, out: Path, lineage: dict) -> None:
    """Writes the checkpoint into `out` (a temporary folder from atomic_output_dir)."""
    if policy.kind == "tiny":
        cfg: TinyLlamaConfig = policy.module.config  # type: ignore[assignment]
        config = cfg.to_hf_dict()
        config["aries_lineage"] = lineage
        (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        state = {k: v.detach().cpu().contiguous() for k, v in policy.module.state_dict().items()}
        torch.save(state, out / "pytorch_model.bin")
        for name in TINY_FILES:
            src = policy.source / name
            if src.is_file() and src.resolve() != (out / name).resolve():
                shutil.copyfile(src, out / name)
        if not (out / "generation_config.json").exists():
            (out / "generation_config.json").write_text(json.dumps(
                {"eos_token_id": cfg.eos_token_id, "pad_token_id": cfg.pad_token_id, "max_new_tokens": 64}, indent=2) + "\n")
        return
    module = policy.module
    if policy.peft:
        module = module.merge_and_unload()  # type: ignore[attr-defined]
    module.save_pretrained(str(out))
    policy.tokenizer.save_pretrained(str(out))  # type: ignore[attr-defined]
    (out / "aries_lineage.json").write_text(json.dumps(lineage, indent=2) + "\n", encoding="utf-8")
