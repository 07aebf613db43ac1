import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTemplate, refinePrompt } from '../src/refinement/template';
import type { DatasetRow, TrainerDoneLine, TrainerLogLine, TrainerStartLine } from '../src/protocol/trainer';
import { PYTHON, REPO_ROOT, TRAINER_DIR, torchUnavailable } from '../test/support/tiny-model';
import { fmt, median } from './measure';
import type { BenchModel } from './models';
import { info, skipped, type SectionResult } from './report';

/**
 * The trainer: tokens/s of ARIES DPO steps (direct + refine rows) on CPU for the small model, run
 * through the trainer's own command line with the example project's DPO settings (its aries.json
 * when it exists), timed by the trainer itself (the `tokens_per_second` of each step's log line:
 * policy tokens of chosen + rejected sequences over the step's wall time, backward and optimizer
 * included). The first step is left out (allocations, first-touch).
 */

export interface TrainerPlan {
  model: BenchModel;
  steps: number;
  pairs: number;
}

const SECTION = 'trainer';
const EXAMPLE_CONFIG = join(REPO_ROOT, 'examples/arithmetic/aries.json');
/** What the loop tests' project uses when the example's aries.json is not there yet. */
const FALLBACK_DPO = { per_device_train_batch_size: 8, rpo_alpha: 1.0, precompute_ref_log_probs: true, learning_rate: 0.001 };

export function exampleDpoSettings(): { settings: Record<string, unknown>; source: string } {
  if (existsSync(EXAMPLE_CONFIG)) {
    const config = JSON.parse(readFileSync(EXAMPLE_CONFIG, 'utf8')) as { training?: { dpo?: Record<string, unknown> } };
    if (config.training?.dpo) return { settings: config.training.dpo, source: 'examples/arithmetic/aries.json training.dpo' };
  }
  return { settings: FALLBACK_DPO, source: 'the loop tests\' settings (examples/arithmetic/aries.json is not there yet)' };
}

/** ARIES rows for sums: chosen "a+b is c.", rejected off by one; each pair as a direct and a refine row. */
function rows(n: number): DatasetRow[] {
  const template = loadTemplate();
  const out: DatasetRow[] = [];
  for (let i = 0; i < n; i++) {
    const a = (i * 7) % 20;
    const b = (i * 11 + 3) % 20;
    const x = `${a}+${b}=`;
    const chosen = `${a}+${b} is ${a + b}.`;
    const rejected = `${a}+${b} is ${a + b + 1 + (i % 3)}.`;
    for (const kind of ['direct', 'refine'] as const) {
      const prompt = kind === 'direct' ? x : refinePrompt(template, x, rejected);
      out.push({
        id: `bench-${i}-${kind}`, kind, prompt: typeof prompt === 'string' ? [{ role: 'user', content: prompt }] : prompt,
        chosen: [{ role: 'assistant', content: chosen }], rejected: [{ role: 'assistant', content: rejected }],
        round: 1, strategy: 'verifier', source: 'auto', curator: null, prompt_id: `p${i}`, trajectory_id: i,
        chosen_step: 1, rejected_step: 0, chosen_step_id: 2 * i + 1, rejected_step_id: 2 * i, policy_model: 'base',
      });
    }
  }
  return out;
}

interface RunLines {
  start: TrainerStartLine | undefined;
  logs: TrainerLogLine[];
  done: TrainerDoneLine | undefined;
}

/** `python -m aries_trainer dpo --config` with these fields; its JSON lines. */
function runDpo(dir: string, name: string, fields: Record<string, unknown>): RunLines {
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify({ dataset_path: join(dir, 'train.jsonl'), output_dir: join(dir, `out-${name}`), logging_steps: 1, export_onnx: false, device: 'cpu', ...fields }, null, 2));
  const run = spawnSync(PYTHON, ['-m', 'aries_trainer', 'dpo', '--config', path], { env: { ...process.env, PYTHONPATH: TRAINER_DIR }, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (run.status !== 0) throw new Error(`trainer bench: aries_trainer dpo (${name}) failed (exit ${run.status}):\n${run.stderr.slice(-2000)}`);
  const lines = run.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string });
  return {
    start: lines.find((l): l is TrainerStartLine => l.type === 'start'),
    logs: lines.filter((l): l is TrainerLogLine => l.type === 'log'),
    done: lines.find((l): l is TrainerDoneLine => l.type === 'done'),
  };
}

/**
 * Peak memory of a DPO round with LoRA (PEFT, r 8 on every linear layer; the reference is the base
 * with the adapters off) against full fine-tuning with a frozen reference copy, same model, rows and
 * steps, run one after the other in this process. Peak RSS of the trainer process, as it reports it.
 */
export function loraMemoryBench(models: BenchModel[], steps: number, pairs: number, log: (line: string) => void): SectionResult {
  const dir = mkdtempSync(join(tmpdir(), 'aries-bench-lora-'));
  const out: SectionResult = { findings: [], notes: [] };
  try {
    writeFileSync(join(dir, 'train.jsonl'), rows(pairs).map((r) => JSON.stringify(r)).join('\n') + '\n');
    // Two rows a step: on a CPU, a larger batch's activations (which LoRA does not shrink, and its dropout
    // copies grow) outweigh a 20M model's weights; LoRA saves what scales with the parameters.
    const common = { max_steps: steps, per_device_train_batch_size: 2, learning_rate: 1e-4, precompute_ref_log_probs: false, rpo_alpha: 1.0 };
    for (const model of models) {
      log(`  LoRA vs full fine-tuning memory on ${model.name}, ${steps} DPO steps each`);
      const full = runDpo(dir, `${model.name}-full`, { ...common, model_name_or_path: model.dir });
      const lora = runDpo(dir, `${model.name}-lora`, { ...common, model_name_or_path: model.dir, use_peft: true, lora_r: 8, lora_alpha: 16, lora_target_modules: 'all-linear' });
      const f = full.done?.peak_memory_mb ?? NaN;
      const l = lora.done?.peak_memory_mb ?? NaN;
      const params = full.start?.num_parameters ?? 0;
      out.findings.push(info(SECTION, `${model.name} · LoRA / full peak memory (DPO)`, `${(l / f).toFixed(2)}×`, `${fmt.int(l)} MB vs ${fmt.int(f)} MB; ${fmt.int(lora.start?.trainable_parameters ?? 0)} of ${fmt.int(params)} parameters trained`));
      out.notes.push(
        `- ${model.name} (${model.description}): full fine-tuning ${fmt.int(f)} MB peak RSS (policy, a frozen reference copy, gradients and AdamW's two moments: about ` +
          `${fmt.int((params * 4 * 5) / 2 ** 20)} MB of float32 tensors on top of the process's own), LoRA r 8 on every linear layer ${fmt.int(l)} MB ` +
          `(${fmt.int(lora.start?.trainable_parameters ?? 0)} trainable parameters, dropout 0.05; the reference is the base with the adapters off, no copy); ${steps} steps, batch 2 rows, CPU. ` +
          'Peak RSS includes the process itself (Python, torch, transformers: about 300 MB; peft adds about 50 MB).',
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

export async function trainerBench(plan: TrainerPlan, log: (line: string) => void): Promise<SectionResult> {
  const why = torchUnavailable();
  if (why) return { findings: [skipped(SECTION, 'DPO step tokens/s (CPU)', why)], notes: [] };
  const { settings, source } = exampleDpoSettings();
  const dir = mkdtempSync(join(tmpdir(), 'aries-bench-train-'));
  try {
    writeFileSync(join(dir, 'train.jsonl'), rows(plan.pairs).map((r) => JSON.stringify(r)).join('\n') + '\n');
    const config = {
      ...settings,
      model_name_or_path: plan.model.dir,
      dataset_path: join(dir, 'train.jsonl'),
      output_dir: join(dir, 'out'),
      max_steps: plan.steps,
      logging_steps: 1,
      export_onnx: false,
      device: 'cpu',
    };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
    log(`  ${plan.steps} DPO steps on ${plan.model.name}, ${plan.pairs} pairs × (direct + refine), settings from ${source}`);
    const run = spawnSync(PYTHON, ['-m', 'aries_trainer', 'dpo', '--config', join(dir, 'config.json')], {
      env: { ...process.env, PYTHONPATH: TRAINER_DIR },
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    if (run.status !== 0) throw new Error(`trainer bench: aries_trainer dpo failed (exit ${run.status}):\n${run.stderr.slice(-2000)}`);
    const lines = run.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string });
    const start = lines.find((l): l is TrainerStartLine => l.type === 'start');
    const steps = lines.filter((l): l is TrainerLogLine => l.type === 'log' && typeof (l as TrainerLogLine).tokens_per_second === 'number');
    const measured = steps.slice(1).map((l) => l.tokens_per_second!);
    const tps = median(measured);
    const batch = Number(settings.per_device_train_batch_size ?? 8) * Number(settings.gradient_accumulation_steps ?? 1);
    return {
      findings: [info(SECTION, `${plan.model.name} · DPO step (CPU)`, `${fmt.int(tps)} tok/s`, `batch ${batch} rows, ${start ? fmt.int(start.num_parameters) : '?'} parameters`)],
      notes: [
        `- \`python -m aries_trainer dpo\` on ${plan.model.description}: ${plan.pairs} pairs as direct + refine rows (${plan.pairs * 2} rows), settings from ${source} ` +
          `(${Object.entries(settings).map(([k, v]) => `${k} ${String(v)}`).join(', ')}), max_steps ${plan.steps}, CPU, torch's default threads. ` +
          `tokens/s per step as the trainer logs it (chosen + rejected tokens through the policy, forward + backward + optimizer step); median of steps 2–${steps.length}: ` +
          `${measured.map((x) => fmt.int(x)).join(', ')}.`,
        '- GPU: engine/bench/gpu/run.sh times the same step with a ~0.5B Hugging Face model through the trainer (transformers) on a CUDA machine; see "GPU" below.',
      ],
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
