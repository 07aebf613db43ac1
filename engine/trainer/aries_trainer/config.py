"""Run configurations (TRL style): dataclasses whose every field carries its help text.
The command line is generated from them (see cli.py); `--config file.json` sets fields from a file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


def opt(default, help: str, choices: Optional[tuple] = None):
    meta = {"help": help}
    if choices:
        meta["choices"] = choices
    return field(default=default, metadata=meta)


@dataclass
class LoopConfig:
    """What every training command shares: the data, the output folder and the optimisation loop."""

    model_name_or_path: str = opt("", "Folder of the Hugging Face causal LM to start from (config.json, safetensors or pytorch_model.bin, tokenizer files); the bundled model is one.")
    dataset_path: str = opt("", "JSONL dataset: ARIES preference rows for `dpo`; prompt/completion or preference rows for `sft`.")
    output_dir: str = opt("", "Folder for the final checkpoint. Written to a temporary folder first and renamed when complete.")
    overwrite_output_dir: bool = opt(False, "Replace output_dir if it already exists (otherwise that is an error).")
    learning_rate: float = opt(5e-5, "Peak learning rate of AdamW.")
    lr_scheduler_type: str = opt("linear", "Learning-rate schedule after warmup.", ("linear", "constant", "cosine"))
    warmup_ratio: float = opt(0.0, "Fraction of optimizer steps spent warming the learning rate up from 0.")
    weight_decay: float = opt(0.0, "AdamW weight decay.")
    max_grad_norm: float = opt(1.0, "Gradient clipping norm (0 disables clipping).")
    num_train_epochs: float = opt(1.0, "Passes over the dataset (may be fractional).")
    max_steps: int = opt(-1, "If > 0, stop after this many optimizer steps (overrides num_train_epochs).")
    per_device_train_batch_size: int = opt(8, "Rows per micro-batch.")
    gradient_accumulation_steps: int = opt(1, "Micro-batches per optimizer step.")
    max_length: int = opt(512, "Longest prompt + completion in tokens; longer prompts are cut from the left (counted in the log).")
    seed: int = opt(42, "Seed for shuffling and initialisation.")
    logging_steps: int = opt(1, "Emit a JSON progress line every this many optimizer steps.")
    num_threads: int = opt(0, "CPU threads for PyTorch (0 = PyTorch's default).")
    device: str = opt("auto", "Where to train: `auto` (cuda when available), `cpu`, `cuda`.", ("auto", "cpu", "cuda"))


@dataclass
class TrainConfig(LoopConfig):
    """Training the policy (`sft`, `dpo`)."""

    bf16: bool = opt(False, "Load and train the model in bfloat16 (GPU).")
    trust_remote_code: bool = opt(False, "Allow a checkpoint whose config.json names modelling code shipped in its folder (auto_map) to run that code. Read the code first.")
    export_onnx: bool = opt(True, "Also write onnx/model.onnx into the checkpoint (optimum's exporter, checked against PyTorch) so the engine's onnx backend generates the next round with it.")
    refine_from_direct: bool = opt(False, "Also derive a refinement row refine(x, y_l) -> y_w from every direct row, with the shared refinement template.")
    refinement_template: str = opt("", "Path of the refinement template JSON (default: engine/templates/refinement.json).")
    use_peft: bool = opt(False, "Train LoRA adapters (peft) instead of all weights; they are merged into the saved checkpoint, and DPO's reference is the base with the adapters off.")
    lora_r: int = opt(16, "LoRA rank.")
    lora_alpha: int = opt(32, "LoRA alpha.")
    lora_dropout: float = opt(0.05, "LoRA dropout.")
    lora_target_modules: str = opt("all-linear", "Comma-separated module names for LoRA (e.g. q_proj,v_proj), or `all-linear`.")


@dataclass
class DPOConfig(TrainConfig):
    beta: float = opt(0.1, "Strength of the KL constraint towards the reference model (DPO beta).")
    loss_type: str = opt("sigmoid", "Preference loss: `sigmoid` (DPO) or `ipo`.", ("sigmoid", "ipo"))
    label_smoothing: float = opt(0.0, "Conservative DPO: assumed probability that a preference label is flipped.")
    w_direct: float = opt(1.0, "Weight of direct rows (x -> y_w over y_l) in the ARIES objective.")
    w_refine: float = opt(1.0, "Weight of refinement rows (refine(x, y_l) -> y_w over y_l).")
    w_keep: float = opt(1.0, "Weight of keep rows (refine(x, y_w) -> y_w over y_l: refining a right answer keeps it).")
    pair_kinds: str = opt("both", "Which rows to train on: `both` (every row: ARIES), `direct` (the iterative-DPO baseline), `refine` (rows whose prompt is a refinement: refine and keep).", ("both", "direct", "refine"))
    rpo_alpha: float = opt(0.0, "Weight of an extra NLL term on the chosen answer (iterative RPO); 0 = pure preference loss.")
    nll_average: str = opt(
        "row",
        "How the NLL term averages: `row` (each chosen answer's per-token NLL, then the mean over rows: the RPO paper's "
        "-log p(y_w|x) / |y_w|) or `token` (the mean over every chosen token of the batch: TRL's loss_type ['sigmoid', 'sft']).",
        ("row", "token"),
    )
    preference_span: str = opt(
        "full",
        "Completion tokens the preference term compares: `full` (all of them: standard DPO, as TRL computes it) or "
        "`first_difference` (up to and including the first token where chosen and rejected differ: the first error, "
        "as Step-DPO compares the first wrong step; what a rejected answer does after its mistake is not pushed down). "
        "The NLL term always covers the whole chosen answer.",
        ("full", "first_difference"),
    )
    precompute_ref_log_probs: bool = opt(False, "Compute the reference log-probs once before training and drop the reference model.")


@dataclass
class SFTConfig(TrainConfig):
    learning_rate: float = opt(1e-3, "Peak learning rate of AdamW.")
    warmup_ratio: float = opt(0.05, "Fraction of optimizer steps spent warming the learning rate up from 0.")
    init_from_scratch: str = opt("", "Start from a new random Llama model with this JSON architecture (e.g. '{\"hidden_size\": 128}') and the tokenizer files in model_name_or_path.")


@dataclass
class ExportConfig:
    model_name_or_path: str = opt("", "Checkpoint folder in the Hugging Face layout: a causal LM (exported for text-generation-with-past) or a *ForSequenceClassification reward model (text-classification).")
    output_dir: str = opt("", "Where to write model.onnx; default: onnx/ inside model_name_or_path.")
    opset: int = opt(0, "ONNX opset version (0 = optimum's default for the architecture).")
    check: bool = opt(True, "Policies: run the export in onnxruntime and compare its logits with PyTorch's (fails above 1e-3).")
    slots: bool = opt(True, "Policies (Llama, Mistral, Qwen2): also write model_slots.onnx, the slot-cache graph the engine decodes with fastest (always checked against transformers).")
    trust_remote_code: bool = opt(False, "Allow modelling code shipped in the checkpoint folder (config.json auto_map) to run.")


@dataclass
class ExportSlotsConfig:
    model_name_or_path: str = opt("", "Checkpoint folder of a causal LM (Llama, Mistral or Qwen2, no sliding window); onnx/model_slots.onnx is written inside it.")


@dataclass
class QuantizeConfig:
    model_name_or_path: str = opt("", "Model folder with its ONNX decoder graph (onnx/model.onnx or model.onnx); model_quantized.onnx is written beside it.")
    per_channel: bool = opt(False, "Quantize weights per output channel instead of per tensor.")


@dataclass
class RMConfig(LoopConfig):
    """Training a reward model (`rm`) with the Bradley-Terry loss on preference rows."""

    model_name_or_path: str = opt("", "Folder to start from: a causal LM checkpoint (its body initialises the reward model; lm_head is dropped and a new `score` head added), a reward model (training goes on), or a folder of tokenizer files together with init_from_scratch.")
    dataset_path: str = opt("", "JSONL of ARIES preference rows (prompt, chosen, rejected), e.g. written by `aries export`.")
    output_dir: str = opt("", "Folder for the reward model (config.json, model.safetensors, tokenizer files, onnx/model.onnx). Written to a temporary folder first and renamed when complete.")
    learning_rate: float = opt(1e-4, "Peak learning rate of AdamW.")
    max_length: int = opt(512, "Longest rendered conversation (prompt + response) in tokens; longer ones are cut from the left, keeping the end where the reward is read (counted in the log).")
    init_from_scratch: str = opt("", "Start from a new random Llama body with this JSON architecture (e.g. '{\"hidden_size\": 64}') and the tokenizer files in model_name_or_path.")
    pair_kinds: str = opt("direct", "Rows to train on: `direct` (the scorer shows the reward model the original question x, as direct rows do), `both` (every row), or `refine` (refine and keep rows).", ("direct", "both", "refine"))
    center_rewards_coefficient: float = opt(0.0, "Weight of an extra mean((r_w + r_l)^2) term that keeps rewards centred on 0 (TRL's center_rewards_coefficient); 0 = off.")
    trust_remote_code: bool = opt(False, "Allow modelling code shipped in the checkpoint folder (config.json auto_map) to run.")
    export_onnx: bool = opt(True, "Also write onnx/model.onnx (optimum's text-classification export: input_ids, attention_mask -> logits [batch, 1]) for the engine's rm:onnx scorer.")
    opset: int = opt(0, "ONNX opset version of the export (0 = optimum's default).")
