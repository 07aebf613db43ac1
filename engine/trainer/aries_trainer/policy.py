"""Loading the model being trained and saving checkpoints atomically.

Every policy is a Hugging Face causal LM loaded with `transformers` — the bundled model is a
(tiny) `llama` checkpoint like any other. A folder is checked before anything heavy is loaded, so
a reward model, a folder without a tokenizer or one that needs `trust_remote_code` fails with the
file named and what to do, instead of loading with a freshly initialised head.
"""

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

from .hf_tokenizer import HFTokenizer, load_tokenizer

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")
# Defaults of a model made with init_from_scratch (the bundled model's family); the JSON given overrides them.
SCRATCH_DEFAULTS = {"hidden_size": 128, "intermediate_size": 352, "num_hidden_layers": 4, "num_attention_heads": 4,
                    "max_position_embeddings": 512, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": True}


class ModelError(ValueError):
    """A model folder that cannot be used; the message says which file and what to do."""


@dataclass
class LoraSettings:
    r: int
    alpha: int
    dropout: float
    target_modules: str  # comma-separated names, or "all-linear"


@dataclass
class Policy:
    """The trainable model plus what the training loop needs to know about it."""

    module: nn.Module  # a transformers PreTrainedModel, or a peft PeftModel around one
    tokenizer: HFTokenizer
    source: Path
    max_positions: int
    peft: bool = False

    @staticmethod
    def logits(module: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return module(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits

    def reference(self, device: torch.device) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """pi_ref: the policy as it is now, frozen. With LoRA it is the base with the adapters disabled,
        so no second copy of the weights is held; otherwise a frozen deep copy."""
        if self.peft:
            module = self.module

            def with_adapters_off(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
                with module.disable_adapter():  # type: ignore[attr-defined]
                    return self.logits(module, ids, mask)

            return with_adapters_off
        frozen = copy.deepcopy(self.module).to(device).eval()
        for p in frozen.parameters():
            p.requires_grad_(False)
        return lambda ids, mask: self.logits(frozen, ids, mask)


def read_config(model_dir: Path) -> dict:
    path = model_dir / "config.json"
    if not path.is_file():
        raise ModelError(f"{path}: missing; a Hugging Face model folder holds config.json, the weights "
                         "(model.safetensors or pytorch_model.bin) and the tokenizer files")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(config, dict):
        raise ModelError(f"{path}: must hold a JSON object")
    return config


def check_causal_lm_folder(model_dir: Path, trust_remote_code: bool) -> dict:
    """What transformers would load, checked from the files alone. Returns config.json."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    config = read_config(model_dir)
    config_path = model_dir / "config.json"
    model_type = config.get("model_type")
    auto_map = config.get("auto_map") if isinstance(config.get("auto_map"), dict) else {}
    if model_type not in CONFIG_MAPPING_NAMES:
        if auto_map and not trust_remote_code:
            code = sorted(p.name for p in model_dir.glob("*.py")) or ["the modules auto_map names"]
            raise ModelError(f"{config_path}: model_type {model_type!r} is not built into transformers; config.json's auto_map "
                             f"points at code shipped with the model ({', '.join(code)}). Loading it runs that code: read it, "
                             "then set trust_remote_code true (training.dpo / training.sft in aries.json, or --trust_remote_code true)")
        if not auto_map:
            raise ModelError(f"{config_path}: model_type {model_type!r} is not known to transformers "
                             f"{_transformers_version()}; use a causal LM checkpoint (model_type e.g. llama, qwen2, mistral, gpt2)")
    elif model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise ModelError(f"{config_path}: model_type {model_type!r} has no causal language-model head in transformers "
                         "(it is an encoder or another kind of model); ARIES trains causal LMs (…ForCausalLM checkpoints)")
    causal_classes = set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())
    architectures = [a for a in config.get("architectures") or [] if isinstance(a, str)]
    if architectures and not any(a in causal_classes or a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures):
        raise ModelError(f"{config_path}: architectures is {architectures}: this checkpoint is not a causal LM "
                         "(a sequence-classification head is a reward model: give it to rewardModel.onnxPath, not model); "
                         "loading it as a causal LM would train a freshly initialised lm_head")
    if not any((model_dir / f).is_file() for f in WEIGHT_FILES):
        raise ModelError(f"{model_dir}: no weights (looked for {', '.join(WEIGHT_FILES)})")
    check_tokenizer_folder(model_dir)
    return config


def check_tokenizer_folder(model_dir: Path) -> None:
    if not any((model_dir / f).is_file() for f in TOKENIZER_FILES):
        raise ModelError(f"{model_dir}: no tokenizer (looked for {', '.join(TOKENIZER_FILES)}); copy tokenizer.json and "
                         "tokenizer_config.json from the model this checkpoint was trained from")


def _transformers_version() -> str:
    import transformers

    return transformers.__version__


def load_policy(model_dir: str, *, bf16: bool = False, trust_remote_code: bool = False, lora: Optional[LoraSettings] = None,
                init_from_scratch: Optional[dict] = None) -> Policy:
    path = Path(model_dir)
    if not model_dir or not path.is_dir():
        raise ModelError(f"model_name_or_path {model_dir!r} is not a folder; pass a model folder (the bundled one is examples/arithmetic/model)")
    import transformers

    dtype = torch.bfloat16 if bf16 else torch.float32
    if init_from_scratch is not None:
        check_tokenizer_folder(path)
        tokenizer = load_tokenizer(path, trust_remote_code)
        arch = {**SCRATCH_DEFAULTS, **init_from_scratch}
        config = transformers.LlamaConfig(vocab_size=tokenizer.vocab_size, eos_token_id=tokenizer.eos_token_id,
                                          pad_token_id=tokenizer.pad_token_id, bos_token_id=None, **arch)
        module = transformers.AutoModelForCausalLM.from_config(config, dtype=dtype)
    else:
        check_causal_lm_folder(path, trust_remote_code)
        tokenizer = load_tokenizer(path, trust_remote_code)
        try:
            module = transformers.AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype, local_files_only=True,
                                                                      trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as exc:
            raise ModelError(f"{path}: transformers cannot load the checkpoint ({str(exc).splitlines()[0]})") from exc
    if lora is not None:
        module = _with_lora(module, lora)
    positions = getattr(module.config, "max_position_embeddings", None) or 4096
    return Policy(module, tokenizer, path, positions, peft=lora is not None)


def _with_lora(module: nn.Module, lora: LoraSettings) -> nn.Module:
    import peft

    targets = lora.target_modules.strip()
    config = peft.LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, task_type="CAUSAL_LM",
                             target_modules="all-linear" if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()])
    try:
        return peft.get_peft_model(module, config)
    except ValueError as exc:
        raise ModelError(f"lora_target_modules {targets!r}: {exc}") from exc


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


def save_policy(policy: Policy, out: Path, lineage: dict, state_dict: Optional[dict] = None) -> nn.Module:
    """Writes a checkpoint transformers reloads (safetensors, config, tokenizer, generation config)
    into `out` (a temporary folder from atomic_output_dir) and returns the module as saved. LoRA
    adapters are merged into the weights, so the next round generates from (and trains) one plain
    model. `state_dict` is the gathered one under DeepSpeed ZeRO-3 / FSDP (accelerate's get_state_dict)."""
    module = policy.module.to("cpu").eval()
    if policy.peft:
        module, state_dict = module.merge_and_unload(), None  # type: ignore[attr-defined]
    # The bundled model's config carried a flag for the trainer's former built-in implementation.
    if hasattr(module.config, "aries_tiny"):
        delattr(module.config, "aries_tiny")
    module.config.aries_lineage = lineage
    module.save_pretrained(str(out), safe_serialization=True, state_dict=state_dict)
    policy.tokenizer.save_pretrained(str(out))
    return module
