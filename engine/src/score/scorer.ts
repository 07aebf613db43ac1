import type { PromptInput } from '../generation/backend';

/**
 * Scorers give each step a number: the verifier (1 correct / 0 wrong / null when it cannot tell),
 * reward models (a raw logit or score). Selection strategies compare these numbers.
 */
export interface ScoreInput {
  /** The step being scored (steps.id). */
  stepId: number;
  /** The original question x (not the refinement prompt): what the answer must answer. */
  prompt: PromptInput;
  response: string;
  /** The reference answer when the prompt has one (verifier). */
  reference: string | null;
}

export interface ScoreResult {
  stepId: number;
  /** null when the scorer cannot score this step (e.g. no reference); stored with its raw output. */
  value: number | null;
  /** What the scorer saw or returned, kept for curators (extracted answer, logits...). */
  raw: unknown;
}

export interface Scorer {
  /** Stored in scores.scorer, e.g. 'verifier', 'rm:onnx', 'rm:http'. */
  readonly name: string;
  score(inputs: ScoreInput[], options?: { signal?: AbortSignal }): Promise<ScoreResult[]>;
  close?(): Promise<void>;
}
