/**
 * The engine <-> trainer boundary (docs/protocol.md, docs/dataset-format.md).
 * Python side: engine/trainer/aries_trainer/progress.py (stdout lines) and dataset.py (rows).
 *
 * 1. The engine writes the ARIES dataset (JSONL of DatasetRow) and a trainer config (JSON).
 * 2. It starts the trainer with an argument list (never a shell string).
 * 3. The trainer prints one TrainerLine per stdout line, logs for people on stderr, and exits
 *    0 (done), 2 (bad input), 3 (training failed) or anything else (crash).
 * A configured command that is a Hugging Face Trainer (`trl dpo`, `trl sft`, …) prints no
 * TrainerLine; parseHfTrainerOutput reads what it does print instead (HfTrainerOutput below).
 */
import type { ChatMessage } from './engine-types';

export type DatasetPrompt = string | ChatMessage[];
export type DatasetCompletion = string | [ChatMessage];

/** One preference row: TRL's explicit-prompt format plus provenance columns TRL ignores. */
export interface DatasetRow {
  id: string;
  kind: 'direct' | 'refine' | 'keep';
  /** direct: x. refine: refine(x, y_l); keep: refine(x, y_w) — both already rendered with the refinement template. */
  prompt: DatasetPrompt;
  chosen: DatasetCompletion;
  rejected: DatasetCompletion;
  round: number;
  /** 'verifier' | 'rule' | 'rm' | 'human' */
  strategy: string;
  source: 'auto' | 'override';
  curator: string | null;
  prompt_id: string;
  trajectory_id: number;
  chosen_step: number;
  rejected_step: number;
  chosen_step_id: number;
  rejected_step_id: number;
  policy_model: string;
}

export interface TrainerStartLine {
  type: 'start';
  objective: 'dpo' | 'sft' | 'rm';
  rows: number;
  rows_by_kind: Record<string, number>;
  device: string;
  num_parameters: number;
  /** All of them, or only the LoRA adapters'. */
  trainable_parameters?: number;
  /** 1, or how many `accelerate launch` started. */
  processes?: number;
  total_steps: number;
}

/**
 * TRL's metric names; values are null when not a number (NaN / inf). For `rm` the rewards/* values
 * are the reward model's own outputs: r(x, y_w), r(x, y_l), their difference, share with r_w > r_l.
 */
export interface TrainerLogLine {
  type: 'log';
  step: number;
  epoch: number;
  loss: number | null;
  learning_rate: number;
  grad_norm?: number | null;
  tokens_per_second?: number;
  'rewards/chosen'?: number | null;
  'rewards/rejected'?: number | null;
  'rewards/margins'?: number | null;
  'rewards/accuracies'?: number | null;
  'logps/chosen'?: number | null;
  'logps/rejected'?: number | null;
  nll_loss?: number | null;
  mean_token_accuracy?: number | null;
}

export interface TrainerDoneLine {
  type: 'done';
  output_dir: string;
  steps: number;
  train_loss: number | null;
  runtime_s: number;
  /** Peak resident memory of the (main) trainer process, or peak CUDA memory on a GPU. */
  peak_memory_mb?: number | null;
}

export interface TrainerErrorLine {
  type: 'error';
  message: string;
  exit_code: number;
}

export type TrainerLine = TrainerStartLine | TrainerLogLine | TrainerDoneLine | TrainerErrorLine;

/** A finite number, or null (JSON has no NaN: trainers write null; anything else is not a number either). */
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const count = (v: unknown): number | null => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : null);

/**
 * Parses one stdout line; anything that is not one of our lines (e.g. TRL's own output) gives null.
 * The line is rebuilt field by field with the types above, so a trainer that prints a string or an
 * object where a number belongs cannot reach the store or the progress bar.
 */
export function parseTrainerLine(line: string): TrainerLine | null {
  const text = line.trim();
  if (!text.startsWith('{') || text.length > 1_000_000) return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const v = value as Record<string, unknown>;
  switch (v.type) {
    case 'start': {
      const total = count(v.total_steps);
      if (total === null) return null;
      const byKind: Record<string, number> = {};
      if (typeof v.rows_by_kind === 'object' && v.rows_by_kind !== null) for (const [k, n] of Object.entries(v.rows_by_kind)) if (count(n) !== null) byKind[k] = n as number;
      const objective = v.objective === 'sft' || v.objective === 'rm' ? v.objective : 'dpo';
      const start: TrainerStartLine = { type: 'start', objective, rows: count(v.rows) ?? 0, rows_by_kind: byKind, device: typeof v.device === 'string' ? v.device : '', num_parameters: count(v.num_parameters) ?? 0, total_steps: total };
      if (count(v.trainable_parameters) !== null) start.trainable_parameters = v.trainable_parameters as number;
      if (count(v.processes) !== null) start.processes = v.processes as number;
      return start;
    }
    case 'log': {
      const step = count(v.step);
      if (step === null) return null;
      const out: TrainerLogLine = { type: 'log', step, epoch: num(v.epoch) ?? 0, loss: num(v.loss), learning_rate: num(v.learning_rate) ?? 0 };
      // Every other metric is kept when it is a number or null (an objective may add its own), at most 64 of them.
      const extra = Object.entries(v).filter(([k, x]) => !(k in out) && (x === null || typeof x === 'number'));
      for (const [k, x] of extra.slice(0, 64)) (out as unknown as Record<string, number | null>)[k] = num(x);
      return out;
    }
    case 'done':
      return typeof v.output_dir === 'string'
        ? { type: 'done', output_dir: v.output_dir, steps: count(v.steps) ?? 0, train_loss: num(v.train_loss), runtime_s: num(v.runtime_s) ?? 0, peak_memory_mb: num(v.peak_memory_mb) }
        : null;
    case 'error':
      return typeof v.message === 'string' ? { type: 'error', message: v.message.slice(0, 4000), exit_code: count(v.exit_code) ?? 1 } : null;
    default:
      return null;
  }
}

/**
 * What a Hugging Face Trainer prints (transformers' ProgressCallback / PrinterCallback, which `trl dpo`
 * and `trl sft` use): the logged metrics as a Python dict on stdout —
 *   {'loss': 0.6931, 'grad_norm': 1.25, 'learning_rate': 5e-07, 'rewards/chosen': 0.0, 'epoch': 0.5}
 * — and a tqdm bar on stderr, `  40%|████      | 4/10 [00:02<00:03,  1.9it/s]`, redrawn after
 * carriage returns (which readline also ends lines at). Metric names are TRL's, as ours are.
 */
export type HfTrainerOutput = { kind: 'metrics'; values: Record<string, number | null> } | { kind: 'progress'; done: number; total: number };

const HF_ENTRY = /^'([A-Za-z0-9_./-]{1,64})':\s*(-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|nan|inf|-inf|None)$/;
// The Trainer's bar counts optimizer steps in it/s (or s/it); datasets' bars count examples/s and are not progress.
const TQDM = /(\d+)\/(\d+) \[[^\]]*(?:it\/s|s\/it)\]\s*$/;

export function parseHfTrainerOutput(line: string): HfTrainerOutput | null {
  const text = line.trim();
  if (text.startsWith("{'") && text.endsWith('}') && text.length < 20_000) {
    const values: Record<string, number | null> = {};
    // Values are numbers (or nan / inf / None), so splitting on ", '" cannot cut inside one.
    for (const part of text.slice(1, -1).split(/,\s*(?=')/)) {
      const m = HF_ENTRY.exec(part.trim());
      if (!m) return null;
      const x = Number(m[2]);
      values[m[1]!] = Number.isFinite(x) ? x : null;
    }
    return Object.keys(values).length > 0 ? { kind: 'metrics', values } : null;
  }
  const bar = TQDM.exec(text);
  if (bar) {
    const done = Number(bar[1]);
    const total = Number(bar[2]);
    if (Number.isSafeInteger(done) && Number.isSafeInteger(total) && total > 0 && done <= total) return { kind: 'progress', done, total };
  }
  return null;
}
