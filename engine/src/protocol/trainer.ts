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
  kind: 'direct' | 'refine';
  /** direct: x. refine: refine(x, y_l), already rendered with the refinement template. */
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

/** Parses one stdout line; anything that is not one of our lines (e.g. TRL's own output) gives null. */
export function parseTrainerLine(line: string): TrainerLine | null {
  const text = line.trim();
  if (!text.startsWith('{')) return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  switch (v.type) {
    case 'start':
      return typeof v.total_steps === 'number' ? (v as unknown as TrainerStartLine) : null;
    case 'log':
      return typeof v.step === 'number' ? (v as unknown as TrainerLogLine) : null;
    case 'done':
      return typeof v.output_dir === 'string' ? (v as unknown as TrainerDoneLine) : null;
    case 'error':
      return typeof v.message === 'string' ? (v as unknown as TrainerErrorLine) : null;
    default:
      return null;
  }
}
