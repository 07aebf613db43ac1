import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * A small trained model for the onnx backend tests: the bundled examples/arithmetic/model when it has
 * been built, otherwise one trained here with the project's own trainer (SFT from scratch, ~15 s)
 * and cached under the OS temp folder, keyed by a hash of the trainer's sources and this recipe.
 */

export const REPO_ROOT = resolve(__dirname, '../../..');
export const TRAINER_DIR = join(REPO_ROOT, 'engine/trainer');
/** The trainer's Python: scripts/test.sh's ARIES_PYTHON, else the project venv `npm run setup` makes. */
export const PYTHON = process.env.ARIES_PYTHON ?? join(REPO_ROOT, '.venv/bin/python');
const BUNDLED = join(REPO_ROOT, 'examples/arithmetic/model');

export type ModelOrSkip = { dir: string; skip?: undefined } | { dir?: undefined; skip: string };

/** Training recipe; changing it changes the cache key. */
const ARCH = { hidden_size: 64, num_hidden_layers: 2, intermediate_size: 128 };
const SFT_FLAGS = ['--max_steps', '150', '--per_device_train_batch_size', '16', '--learning_rate', '0.003', '--seed', '1'];

/** Chat rows: sums ("12+7=" → "12+7 is 19.") and word repetition (long answers, so `length` and stop strings get exercised). */
function trainingRows(): string {
  const rows: string[] = [];
  const row = (q: string, a: string) => rows.push(JSON.stringify({ prompt: [{ role: 'user', content: q }], completion: a }));
  for (let a = 0; a < 20; a++) for (let b = 0; b < 20; b++) row(`${a}+${b}=`, `${a}+${b} is ${a + b}.`);
  const words = ['red', 'green', 'blue', 'cat', 'dog', 'sun', 'moon', 'tree'];
  for (let i = 0; i < 200; i++) {
    const w = [words[i % 8]!, words[(i * 3 + 1) % 8]!, words[(i * 5 + 2) % 8]!];
    row(`repeat: ${w.join(' ')}`, [...w, ...w, ...w].join(' '));
  }
  return rows.join('\n') + '\n';
}

/** Why torch-based steps cannot run here, or undefined when the trainer's Python imports its stack. */
export function torchUnavailable(): string | undefined {
  if (!existsSync(PYTHON)) return `${PYTHON} not found; run \`npm run setup\` (it makes .venv; CI does)`;
  const probe = spawnSync(PYTHON, ['-c', 'import torch, transformers, optimum.exporters.onnx'], { encoding: 'utf8' });
  if (probe.status !== 0) return `${PYTHON} cannot import torch / transformers / optimum (run \`npm run setup\`; CI does)`;
  return undefined;
}

/** The bundled model if it is built, else the cached (or freshly trained) test model. */
export function tinyModel(options: { needsPyTorchWeights?: boolean } = {}): ModelOrSkip {
  const bundledOk = existsSync(join(BUNDLED, 'onnx/model.onnx')) && (!options.needsPyTorchWeights || ['model.safetensors', 'pytorch_model.bin'].some((f) => existsSync(join(BUNDLED, f))));
  if (bundledOk) return { dir: BUNDLED };
  const why = torchUnavailable();
  if (why) return { skip: `no bundled model (examples/arithmetic/model) and cannot train one: ${why}` };
  return { dir: buildCached() };
}

/** sha256 over the trainer's sources and the given recipe parts: changes whenever either does. */
export function trainerCacheKey(...recipe: (string | Buffer)[]): string {
  const hash = createHash('sha256');
  const src = join(TRAINER_DIR, 'aries_trainer');
  for (const name of readdirSync(src).filter((f) => f.endsWith('.py')).sort()) {
    hash.update(name).update(readFileSync(join(src, name)));
  }
  for (const part of recipe) hash.update(part);
  return hash.digest('hex').slice(0, 16);
}

/**
 * A model folder built once under the OS temp folder (aries-test-models/<name>) and reused while
 * `<name>/<marker>` exists. Test files run in parallel processes: one builds, the others wait for
 * its result. `build(work, env)` makes the model inside the private folder `work` and returns its path.
 */
export function cachedModel(name: string, marker: string, build: (work: string, env: NodeJS.ProcessEnv) => string): string {
  const root = join(tmpdir(), 'aries-test-models');
  const dir = join(root, name);
  mkdirSync(root, { recursive: true });
  const lock = `${dir}.lock`;
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    if (existsSync(join(dir, marker))) return dir;
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`${lock}: another test process has been building ${name} for 10 minutes; remove the folder if no build is running`);
      const age = Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > 5 * 60_000) rmSync(lock, { recursive: true, force: true }); // left by a killed build
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 250);
    }
  }
  try {
    if (!existsSync(join(dir, marker))) {
      // Built in a private folder and renamed into place, so no reader ever sees half a model.
      const work = mkdtempSync(join(root, '.build-'));
      try {
        const out = build(work, { ...process.env, PYTHONPATH: TRAINER_DIR });
        rmSync(dir, { recursive: true, force: true }); // an incomplete leftover
        renameSync(out, dir);
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    }
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
  return dir;
}

/** Writes the tiny model's tokenizer files into a new folder `work/tokenizer` and returns it. */
export function tinyTokenizerFolder(work: string, env: NodeJS.ProcessEnv): string {
  const tokDir = join(work, 'tokenizer');
  mkdirSync(tokDir);
  execFileSync(PYTHON, ['-c', 'import sys; from pathlib import Path; from aries_trainer.tokenizer import write_tokenizer_files; write_tokenizer_files(Path(sys.argv[1]))', tokDir], { env });
  return tokDir;
}

/** Runs `python -m aries_trainer <args>`; a failure shows the trainer's stderr. */
export function runTrainer(args: string[], env: NodeJS.ProcessEnv, what: string): void {
  const run = spawnSync(PYTHON, ['-m', 'aries_trainer', ...args], { env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (run.status !== 0) throw new Error(`${what} failed (exit ${run.status}):\n${run.stderr}\n${run.stdout.slice(-2000)}`);
}

/** Writes onnx/model_quantized.onnx into a model folder (`python -m aries_trainer quantize`). */
export function quantizeModel(dir: string): void {
  runTrainer(['quantize', '--model_name_or_path', dir], { ...process.env, PYTHONPATH: TRAINER_DIR }, `quantizing ${dir}`);
}

function buildCached(): string {
  const rows = trainingRows();
  const key = trainerCacheKey(JSON.stringify({ ARCH, SFT_FLAGS }), rows);
  return cachedModel(`tiny-${key}`, 'onnx/model.onnx', (work, env) => {
    const tokDir = tinyTokenizerFolder(work, env);
    writeFileSync(join(work, 'rows.jsonl'), rows);
    const out = join(work, 'model');
    runTrainer(['sft', '--model_name_or_path', tokDir, '--init_from_scratch', JSON.stringify(ARCH), '--dataset_path', join(work, 'rows.jsonl'), '--output_dir', out, ...SFT_FLAGS], env, 'training the test model');
    return out;
  });
}

/** Writes dir/onnx/model_slots.onnx, the slot-cache decoder graph (the trainer's export-slots). */
export function exportSlots(dir: string): void {
  runTrainer(['export-slots', '--model_name_or_path', dir], { ...process.env, PYTHONPATH: TRAINER_DIR, HF_HUB_OFFLINE: '1' }, `exporting the slot-cache graph of ${dir}`);
}
