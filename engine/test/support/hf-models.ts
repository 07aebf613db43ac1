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
  return built(arch, seed, { what: 'test model', cache: 'hf', flags: [], key: [String(seed)] });
}

/**
 * A tiny random-init reward model on a Llama or Qwen2 backbone (AutoModelForSequenceClassification,
 * one label, the same ChatML tokenizer), exported by `python -m aries_trainer export` (optimum's
 * text-classification task) into onnx/: what rm:onnx reads.
 */
export function hfRewardModel(arch: HfArch, seed = 0): ModelOrSkip {
  return built(arch, seed, { what: 'reward model', cache: 'hf-rm', flags: ['--task', 'reward', '--initializer-range', '0.2'], key: ['reward', String(seed)] });
}

/** tiny_hf.py with `flags`, then the trainer's export; cached as `cache`-arch-hash of the sources and `key`. */
function built(arch: HfArch, seed: number, b: { what: string; cache: string; flags: string[]; key: string[] }): ModelOrSkip {
  const { what, flags } = b;
  const why = torchUnavailable();
  if (why) return { skip: `cannot build the ${arch} ${what}: ${why}` };
  const name = `${b.cache}-${arch}-${trainerCacheKey(readFileSync(BUILDER), arch, ...b.key)}`;
  return {
    dir: cachedModel(name, 'onnx/model.onnx', (work, env) => {
      const out = join(work, arch);
      execFileSync(PYTHON, [BUILDER, '--arch', arch, ...flags, '--out', out, '--seed', String(seed)], { env, stdio: ['ignore', 'ignore', 'pipe'] });
      runTrainer(['export', '--model_name_or_path', out], env, `exporting the ${arch} ${what} with optimum`);
      return out;
    }),
  };
}
