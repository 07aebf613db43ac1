import { cancelled } from '../../errors';
import type { FinishReason, GenerationRequest, GenerationResult } from '../backend';
import { Completion } from './completion';
import type { KvForward } from './kv-forward';
import { Rng, type TokenSampler } from './sampling';
import type { ModelTokenizer } from './tokenizer';

/**
 * Decoding one batch: prefill, then one token per unfinished sequence per step until each has met
 * EOS, a stop string or its token budget. Finished rows keep being fed a pad token (cheap masking)
 * until they are a quarter of the batch, then the cache is compacted so they stop costing compute.
 */

export interface BatchItem {
  request: GenerationRequest;
  promptIds: number[];
  /** max_new_tokens, lowered so prompt + completion fit the model's positions. */
  budget: number;
}

export interface BatchHooks {
  signal?: AbortSignal;
  onDelta?: (key: string, delta: string) => void;
}

export interface BatchTimings {
  /** Time inside session.run. */
  forwardMs: number;
  /** Wall time of the whole batch. */
  totalMs: number;
  steps: number;
  generatedTokens: number;
}

interface Sequence {
  item: BatchItem;
  completion: Completion;
  rng: Rng;
  generated: number;
  finish: FinishReason | undefined;
  durationMs: number;
}

export async function decodeBatch(
  forward: KvForward,
  tokenizer: ModelTokenizer,
  sampler: TokenSampler,
  items: readonly BatchItem[],
  hooks: BatchHooks,
): Promise<{ results: GenerationResult[]; timings: BatchTimings }> {
  const started = performance.now();
  const sequences: Sequence[] = items.map((item) => ({
    item,
    completion: new Completion(tokenizer, item.promptIds, item.request.sampling.stop.filter((s) => s.length > 0)),
    rng: new Rng(item.request.sampling.seed),
    generated: 0,
    finish: item.budget > 0 ? undefined : 'length',
    durationMs: 0,
  }));
  // The sequence in each row of the cache; rows of finished sequences are dropped now and then.
  let rows = sequences.filter((s) => s.finish === undefined);
  let steps = 0;
  if (rows.length > 0) {
    throwIfAborted(hooks.signal);
    await forward.prefill(rows.map((s) => s.item.promptIds), tokenizer.padTokenId);
  }
  let tokens = new Int32Array(rows.length);
  while (rows.length > 0) {
    let open = 0;
    for (let r = 0; r < rows.length; r++) {
      const seq = rows[r]!;
      if (seq.finish !== undefined) {
        tokens[r] = tokenizer.padTokenId;
        continue;
      }
      const id = sampler.pick(forward.logits(r), seq.item.request.sampling, seq.rng);
      tokens[r] = id;
      seq.generated++;
      if (tokenizer.eosTokenIds.has(id)) seq.finish = 'stop';
      else if (seq.completion.push(id)) seq.finish = 'stop';
      else if (seq.generated >= seq.item.budget) seq.finish = 'length';
      if (seq.finish === undefined) open++;
      else finishSequence(seq, started);
      stream(seq, hooks);
    }
    if (open === 0) break;
    const finishedRows = rows.length - open;
    if (finishedRows * 4 >= rows.length) {
      const keep: number[] = [];
      rows.forEach((s, r) => s.finish === undefined && keep.push(r));
      forward.keepRows(keep);
      rows = keep.map((r) => rows[r]!);
      tokens = Int32Array.from(keep, (r) => tokens[r]!);
    }
    throwIfAborted(hooks.signal);
    await forward.step(tokens);
    steps++;
  }
  const results = sequences.map((s): GenerationResult => ({
    key: s.item.request.key,
    text: s.completion.text,
    promptTokens: s.item.promptIds.length,
    completionTokens: s.generated,
    finishReason: s.finish ?? 'length',
    durationMs: s.durationMs,
  }));
  const timings = { forwardMs: forward.runMs, totalMs: performance.now() - started, steps, generatedTokens: sequences.reduce((n, s) => n + s.generated, 0) };
  return { results, timings };
}

function finishSequence(seq: Sequence, started: number): void {
  if (!seq.completion.stopped) seq.completion.flush();
  seq.durationMs = performance.now() - started;
}

function stream(seq: Sequence, hooks: BatchHooks): void {
  if (!hooks.onDelta) return;
  const piece = seq.completion.takeStreamable(seq.finish !== undefined);
  if (piece) hooks.onDelta(seq.item.request.key, piece);
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw cancelled('generation');
}
