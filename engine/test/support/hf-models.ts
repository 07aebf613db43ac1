import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ModelOrSkip, PYTHON, REPO_ROOT, cachedModel, runTrainer, torchUnavailable, trainerCacheKey } from './tiny-model';

/**
 * Tiny random-init Hugging Face checkpoints of real architectures for the engine's tests, made by
 * engine/trainer/tests/tiny_hf.py (LlamaForCausalLM or Qwen2ForCausalLM, grouped-query attention,
 * a BPE tokenizer.json trained with `tokenizers`, a ChatML template, safetensors) and exported
 * with optimum (`python -m aries_trainer export`, checked against PyTorch). Cached under the OS
 * temp folder, keyed by the builder's and the trainer's sources.
 */
export type HfArch = 'llama' | 'qwen2';

const BUILDER = join(REPO_ROOT, 'engine/trainer/tests/tiny_hf.py');

export function hfModel(arch: HfArch, seed = 0): ModelOrSkip {
  const why = torchUnavailable();
  if (why) return { skip: `cannot build the ${arch} test model: ${why}` };
  const key = trainerCacheKey(readFileSync(BUILDER), arch, String(seed));
  return {
    dir: cachedModel(`hf-${arch}-${key}`, 'onnx/model.onnx', (work, env) => {
      const out = join(work, arch);
      execFileSync(PYTHON, [BUILDER, '--arch', arch, '--out', out, '--seed', String(seed)], { env, stdio: ['ignore', 'ignore', 'pipe'] });
      runTrainer(['export', '--model_name_or_path', out], env, `exporting the ${arch} test model with optimum`);
      return out;
    }),
  };
}

/**
 * A tiny random-init reward model on a Llama or Qwen2 backbone (AutoModelForSequenceClassification,
 * one label, the same ChatML tokenizer), exported by `python -m aries_trainer export` (optimum's
 * text-classification task) into onnx/: what rm:onnx reads.
 */
export function hfRewardModel(arch: HfArch, seed = 0): ModelOrSkip {
  const why = torchUnavailable();
  if (why) return { skip: `cannot build the ${arch} reward model: ${why}` };
  const key = trainerCacheKey(readFileSync(BUILDER), arch, 'reward', String(seed));
  return {
    dir: cachedModel(`hf-rm-${arch}-${key}`, 'onnx/model.onnx', (work, env) => {
      const out = join(work, arch);
      execFileSync(PYTHON, [BUILDER, '--arch', arch, '--task', 'reward', '--out', out, '--seed', String(seed), '--initializer-range', '0.2'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
      runTrainer(['export', '--model_name_or_path', out], env, `exporting the ${arch} reward model with optimum`);
      return out;
    }),
  };
}
