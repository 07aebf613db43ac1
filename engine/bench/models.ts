import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { exportSlots, PYTHON, REPO_ROOT, TRAINER_DIR, tinyModel, torchUnavailable } from '../test/support/tiny-model';

/**
 * The models the benchmarks run: the bundled model (examples/arithmetic/model; until it is built,
 * the tiny test model, trained and cached by the test support), and a larger decoder built here
 * with the project's trainer (random weights: throughput does not care), cached under the OS temp
 * folder and keyed by its architecture and the trainer's sources.
 */

export interface BenchModel {
  /** Short name for the table. */
  name: string;
  dir: string;
  /** What it is, for the report. */
  description: string;
}

export const BUNDLED_DIR = join(REPO_ROOT, 'examples/arithmetic/model');

/** ~20M parameters: 6 layers of width 512 (SwiGLU 1408), byte-level vocabulary of 261. */
export const DECODER_ARCH = { hidden_size: 512, intermediate_size: 1408, num_hidden_layers: 6, num_attention_heads: 8, max_position_embeddings: 1024 };

export function smallModel(): BenchModel | { skip: string } {
  const found = tinyModel();
  if (found.dir === undefined) return { skip: found.skip };
  const bundled = found.dir === BUNDLED_DIR;
  const config = JSON.parse(readFileSync(join(found.dir, 'config.json'), 'utf8')) as Record<string, number>;
  const shape = `${config.num_hidden_layers} layers × ${config.hidden_size}`;
  return bundled
    ? { name: 'bundled', dir: found.dir, description: `the bundled model (examples/arithmetic/model, ${shape})` }
    : { name: 'tiny-test', dir: found.dir, description: `the tiny test model (engine/test/support/tiny-model.ts, ${shape}; examples/arithmetic/model is not built yet)` };
}

/**
 * ~50M parameters where prefill matters: 8 layers of width 768 (12 query heads, 4 key/value heads:
 * grouped-query attention, as Llama 3 and Qwen2 use), SwiGLU 2048, 2,048 positions; end-of-text
 * reachable, so sequences end at different lengths.
 */
export const PREFILL_DECODER_ARCH = {
  hidden_size: 768, intermediate_size: 2048, num_hidden_layers: 8, num_attention_heads: 12, num_key_value_heads: 4, max_position_embeddings: 2048,
  eos_reachable: true, eos_scale: 1.0, initializer_range: 0.1,
};

export function benchDecoder(log: (line: string) => void): BenchModel | { skip: string } {
  return buildDecoder('decoder-20M', DECODER_ARCH, `${DECODER_ARCH.num_hidden_layers} layers × ${DECODER_ARCH.hidden_size}, ~20M parameters, the trainer's tiny Llama`, log);
}

export function prefillDecoder(log: (line: string) => void): BenchModel | { skip: string } {
  const a = PREFILL_DECODER_ARCH;
  return buildDecoder('decoder-50M', a, `${a.num_hidden_layers} layers × ${a.hidden_size}, ${a.num_attention_heads} heads sharing ${a.num_key_value_heads} key/value heads, ~50M parameters, end-of-text reachable`, log);
}

function buildDecoder(name: string, arch: object, shape: string, log: (line: string) => void): BenchModel | { skip: string } {
  const why = torchUnavailable();
  if (why) return { skip: why };
  const hash = createHash('sha256').update(JSON.stringify(arch)).update(readFileSync(join(__dirname, 'build_decoder.py')));
  const src = join(TRAINER_DIR, 'aries_trainer');
  for (const f of readdirSync(src).filter((n) => n.endsWith('.py')).sort()) hash.update(f).update(readFileSync(join(src, f)));
  const root = join(tmpdir(), 'aries-bench-models');
  const dir = join(root, `${name}-${hash.digest('hex').slice(0, 12)}`);
  const description = `a random-weight decoder built by engine/bench/build_decoder.py (${shape})`;
  if (existsSync(join(dir, 'onnx/model.onnx'))) return { name, dir, description };
  log(`building the benchmark model ${name} in ${dir} (once)`);
  mkdirSync(root, { recursive: true });
  const work = `${dir}.build-${process.pid}`;
  rmSync(work, { recursive: true, force: true });
  try {
    execFileSync(PYTHON, [join(__dirname, 'build_decoder.py'), work, JSON.stringify(arch)], { env: { ...process.env, PYTHONPATH: TRAINER_DIR }, stdio: ['ignore', 'ignore', 'inherit'] });
    rmSync(dir, { recursive: true, force: true });
    renameSync(work, dir);
    // Builds for older trainer sources are never used again.
    for (const old of readdirSync(root).filter((n) => n.startsWith(`${name}-`) && !n.includes('.build-') && join(root, n) !== dir)) rmSync(join(root, old), { recursive: true, force: true });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return { name, dir, description };
}

/**
 * The model with its slot-cache graph (onnx/model_slots.onnx): itself when it has one (the decoders
 * built here get one from the trainer's export), else a copy with one exported, cached like the
 * decoders. The bundled model ships without it (the folder would pass 10 MB); trained rounds get one.
 */
export function withSlotGraph(model: BenchModel, log: (line: string) => void): BenchModel {
  if (existsSync(join(model.dir, 'onnx/model_slots.onnx'))) return model;
  const hash = createHash('sha256').update(readFileSync(join(model.dir, 'onnx/model.onnx')));
  const src = join(TRAINER_DIR, 'aries_trainer');
  for (const f of readdirSync(src).filter((n) => n.endsWith('.py')).sort()) hash.update(f).update(readFileSync(join(src, f)));
  const root = join(tmpdir(), 'aries-bench-models');
  // The folder keeps the model's name: transformers.js (the peer) finds models by folder name.
  const dir = join(root, `${model.name}-slots-${hash.digest('hex').slice(0, 12)}`, basename(model.dir));
  const described = { ...model, dir, description: `${model.description}, with its slot-cache graph exported here` };
  if (existsSync(join(dir, 'onnx/model_slots.onnx'))) return described;
  log(`exporting the slot-cache graph of ${model.name} into ${dir} (once)`);
  const work = `${dirname(dir)}.build-${process.pid}`;
  rmSync(work, { recursive: true, force: true });
  try {
    mkdirSync(work, { recursive: true });
    cpSync(model.dir, join(work, basename(model.dir)), { recursive: true });
    exportSlots(join(work, basename(model.dir)));
    rmSync(dirname(dir), { recursive: true, force: true });
    renameSync(work, dirname(dir));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return described;
}
