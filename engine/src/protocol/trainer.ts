/**
 * The engine <-> trainer boundary (docs/protocol.md, docs/dataset-format.md).
 * Python side: engine/trainer/aries_trainer/progress.py (stdout lines) and dataset.py (rows).
 *
 * 1. The engine writes the ARIES dataset (JSONL of DatasetRow) and a trainer config (JSON).
 * 2. It starts the trainer with an argument list (never a shell string).
 * 3. The trainer prints one TrainerLine per stdout line, logs for people on stderr, and exits
 *    0 (done), 2 (bad input), 3 (training failed) or anything else (crash).
 */
import type { ChatMessage } from '../generation/backend';

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
}

export interface TrainerErrorLine {
  type: 'error';
  message: string;
  exit_code: number;
}

export type TrainerLine = TrainerStartLine | TrainerLogLine | TrainerDoneLine | TrainerErrorLine;

export const TRAINER_EXIT = { ok: 0, badInput: 2, trainingFailed: 3 } as const;

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
      return { type: 'start', objective, rows: count(v.rows) ?? 0, rows_by_kind: byKind, device: typeof v.device === 'string' ? v.device : '', num_parameters: count(v.num_parameters) ?? 0, total_steps: total };
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
      return typeof v.output_dir === 'string' ? { type: 'done', output_dir: v.output_dir, steps: count(v.steps) ?? 0, train_loss: num(v.train_loss), runtime_s: num(v.runtime_s) ?? 0 } : null;
    case 'error':
      return typeof v.message === 'string' ? { type: 'error', message: v.message.slice(0, 4000), exit_code: count(v.exit_code) ?? 1 } : null;
    default:
      return null;
  }
}
