/**
 * One interface for every way the engine gets text from a model: the local onnx backend
 * (onnxruntime-node) and any OpenAI-compatible server. Trajectory collection, evaluation and
 * "Try a Prompt" only ever see this.
 */
import type { PromptInput } from '../protocol/engine-types';
export type { Role, ChatMessage, PromptInput } from '../protocol/engine-types';

export interface SamplingParams {
  /** 0 = greedy decoding. */
  temperature: number;
  /** Nucleus sampling; 1 = off. */
  topP: number;
  /** Keep the k most likely tokens; 0 = off. */
  topK: number;
  maxNewTokens: number;
  /** Generation stops before the first occurrence of any of these; the stop string is not returned. */
  stop: string[];
  /** Per-request seed: the same request and seed give the same text whatever else is in the batch. */
  seed: number;
}

export const GREEDY: SamplingParams = { temperature: 0, topP: 1, topK: 0, maxNewTokens: 64, stop: [], seed: 0 };

export interface GenerationRequest {
  /** The caller's id for this request, echoed in the result. */
  key: string;
  prompt: PromptInput;
  sampling: SamplingParams;
}

export type FinishReason = 'stop' | 'length';

export interface GenerationResult {
  key: string;
  text: string;
  promptTokens: number;
  completionTokens: number;
  finishReason: FinishReason;
  durationMs: number;
}

export interface GenerateOptions {
  /** Stops in-flight work; the promise then rejects with an EngineError('CANCELLED'). */
  signal?: AbortSignal;
  /** Called as each request finishes. */
  onResult?: (result: GenerationResult) => void;
  /** Streaming: called with each new piece of text of a request (used by "Try a Prompt"). */
  onDelta?: (key: string, delta: string) => void;
}

export interface GenerationBackend {
  /** 'onnx' | 'openai' */
  readonly kind: string;
  /** What produced the text, for the steps table: a model folder or server + model name. */
  readonly modelId: string;
  /**
   * True when calls made while another runs share its work (the onnx backend's continuous
   * batching): a caller then does best issuing each request as soon as it is known.
   */
  readonly mergesCalls?: boolean;
  /** Results in the order of `requests`. */
  generate(requests: GenerationRequest[], options?: GenerateOptions): Promise<GenerationResult[]>;
  close(): Promise<void>;
}
