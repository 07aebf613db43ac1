import { cancelled } from '../../errors';
import type { FinishReason, GenerateOptions, GenerationRequest, GenerationResult } from '../backend';
import { Completion } from './completion';
import type { InferenceSession } from 'onnxruntime-node';
import type { DecoderGraph } from './decoder-graph';
import { KvForward, type PrefillRow } from './kv-forward';
import { commonPrefix, type PrefixCache, type PrefixHit } from './prefix-cache';
import { lookupDraft } from './prompt-lookup';
import { isGreedy, Rng, type TokenSampler } from './sampling';
import type { ModelTokenizer } from './tokenizer';

/**
 * The decoding loop of the onnx backend: one batch of rows in the key/value cache, one token per
 * unfinished row per step until each meets EOS, a stop string or its token budget.
 * - Static batching (`continuous` off): a batch is admitted when the previous one has finished.
 * - Continuous batching: once a quarter of the slots are free, waiting requests (from this call or
 *   any call made meanwhile, such as the next refinement step of a trajectory that just finished)
 *   are prefilled and merged into the running batch, so the batch does not run down to its longest
 *   member.
 * - Prefix caching: a finished sequence's keys and values are kept (prefix-cache.ts); a prompt
 *   that starts with a cached sequence's tokens runs only the rest. Prompts admitted together
 *   that share a long prefix (a system prompt, the chat template) run it once.
 * - Speculation (greedy rows): draft tokens looked up in the row's own context, such as the previous
 *   answer a refinement prompt holds, are checked in the same forward pass as the picked token;
 *   the ones greedy decoding would pick are kept, several tokens for one step.
 * Finished rows keep being fed a pad token (cheap masking) until they are a quarter of the batch,
 * then the cache is compacted so they stop costing compute. Texts do not depend on any of this:
 * each row sees the positions and tokens it would see alone.
 */

export interface BatchItem {
  request: GenerationRequest;
  promptIds: number[];
  /** max_new_tokens, lowered so prompt + completion fit the model's positions. */
  budget: number;
}

/** What a call asks of the loop besides its requests: a signal, streaming, results as they come. */
export type BatchHooks = GenerateOptions;

export interface DecodeSettings {
  batchSize: number;
  continuous: boolean;
  prefixCache: PrefixCache | undefined;
  /** Greedy rows: draft tokens from the row's own context (prompt-lookup.ts) checked per step; 0 = off. */
  speculativeTokens: number;
  /**
   * A graph without logits_to_keep returns logits for every prompt position: rows × tokens ×
   * vocabulary floats. Prefills are split by rows to keep that under this many bytes (a real
   * vocabulary of 150k makes 8 rows of 450 tokens 2 GB).
   */
  prefillLogitsBytes: number;
  /** config.json's vocab_size, when it has one. */
  vocabSize: number | undefined;
}

/** Where the time went, summed over every call so far. */
export interface DecodeTotals {
  /** Prefills (admissions of waiting requests into the batch). */
  batches: number;
  steps: number;
  generatedTokens: number;
  /** Prompt tokens that ran through the model (a cached prefix's tokens do not). */
  prefilledTokens: number;
  /** Time inside session.run. */
  forwardMs: number;
  /** Of forwardMs, in prefills. */
  prefillMs: number;
  /** Wall time while the loop had work. */
  totalMs: number;
  /** Draft tokens checked, and of those accepted (each one a token without a step of its own). */
  draftedTokens: number;
  acceptedTokens: number;
}

interface Call {
  hooks: BatchHooks;
  results: GenerationResult[];
  left: number;
  resolve: (results: GenerationResult[]) => void;
  reject: (err: unknown) => void;
  failed: boolean;
}

interface Sequence {
  item: BatchItem;
  call: Call;
  index: number;
  completion: Completion;
  rng: Rng;
  generated: number;
  /** Ids fed to the model so far (prompt, then generated tokens but the latest). */
  fed: number[];
  finish: FinishReason | undefined;
  started: number;
  /** Drafts in a row of which none was kept; at MAX_MISSES the sequence stops drafting. */
  misses: number;
}

/** A sequence whose context keeps predicting wrong stops paying for drafts. */
const MAX_MISSES = 3;

export class DecodeLoop {
  readonly totals: DecodeTotals = { batches: 0, steps: 0, generatedTokens: 0, prefilledTokens: 0, forwardMs: 0, prefillMs: 0, totalMs: 0, draftedTokens: 0, acceptedTokens: 0 };
  private waiting: Sequence[] = [];
  private running: Promise<void> | undefined;

  constructor(
    private readonly session: InferenceSession,
    private readonly graph: DecoderGraph,
    private readonly tokenizer: ModelTokenizer,
    private readonly sampler: TokenSampler,
    private readonly settings: DecodeSettings,
  ) {}

  /** Queues the items; resolves with their results in item order. */
  submit(items: readonly BatchItem[], hooks: BatchHooks): Promise<GenerationResult[]> {
    return new Promise((resolve, reject) => {
      const call: Call = { hooks, results: new Array<GenerationResult>(items.length), left: items.length, resolve, reject, failed: false };
      const now = performance.now();
      const sequences = items.map((item, index): Sequence => ({
        item, call, index,
        completion: new Completion(this.tokenizer, item.promptIds, item.request.sampling.stop.filter((s) => s.length > 0)),
        rng: new Rng(item.request.sampling.seed),
        generated: 0, fed: [...item.promptIds],
        finish: item.budget > 0 ? undefined : 'length',
        started: now,
        misses: 0,
      }));
      for (const s of sequences) if (s.finish !== undefined) this.complete(s);
      // Similar lengths together keep padding (wasted compute) small.
      this.waiting.push(...sequences.filter((s) => s.finish === undefined).sort((a, b) => a.item.promptIds.length - b.item.promptIds.length));
      if (call.left === 0) resolve(call.results);
      else this.running ??= this.loop().finally(() => (this.running = undefined));
    });
  }

  /** Resolves when nothing is running. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async loop(): Promise<void> {
    const started = performance.now();
    const forward = new KvForward(this.session, this.graph);
    let rows: Sequence[] = [];
    const { batchSize, continuous } = this.settings;
    const quarter = Math.max(1, Math.floor(batchSize / 4));
    try {
      for (;;) {
        this.dropCancelled(rows);
        const open = rows.filter((s) => s.finish === undefined);
        const free = batchSize - open.length;
        if (this.waiting.length > 0 && (open.length === 0 || (continuous && forward.supportsHoles && free >= quarter))) {
          const keep = openRows(rows);
          forward.keepRows(keep);
          const admitted = this.waiting.splice(0, free);
          await this.admit(forward, admitted);
          rows = [...keep.map((r) => rows[r]!), ...admitted];
        }
        if (rows.length === 0) break;

        const tokens = new Int32Array(rows.length);
        let stillOpen = 0;
        for (let r = 0; r < rows.length; r++) {
          const seq = rows[r]!;
          if (seq.finish !== undefined) {
            tokens[r] = this.tokenizer.padTokenId;
            continue;
          }
          const id = this.sampler.pick(forward.logits(r), seq.item.request.sampling, seq.rng);
          tokens[r] = id;
          this.push(seq, id);
          if (seq.finish === undefined) {
            stillOpen++;
            seq.fed.push(id);
          } else {
            this.finished(forward, r, seq);
          }
          this.stream(seq);
        }
        if (stillOpen === 0) {
          forward.keepRows([]);
          rows = [];
          continue;
        }
        const finishedRows = rows.length - stillOpen;
        let feed = tokens;
        if (finishedRows * 4 >= rows.length) {
          const keep = openRows(rows);
          forward.keepRows(keep);
          feed = Int32Array.from(keep, (r) => tokens[r]!);
          rows = keep.map((r) => rows[r]!);
        }
        const drafts = this.drafts(rows);
        if (drafts) await this.speculativeStep(forward, rows, feed, drafts);
        else await this.step(forward, feed);
      }
    } catch (err) {
      const calls = new Set([...rows, ...this.waiting].map((s) => s.call));
      this.waiting = [];
      for (const c of calls) this.fail(c, err);
    } finally {
      this.totals.totalMs += performance.now() - started;
    }
  }

  private async step(forward: KvForward, tokens: Int32Array): Promise<void> {
    const before = forward.runMs;
    await forward.step(tokens);
    this.totals.forwardMs += forward.runMs - before;
    this.totals.steps++;
  }

  /**
   * Draft tokens for each open greedy row (none for the others), or undefined when no row has any.
   * A row's drafts stop where its token budget would.
   */
  private drafts(rows: readonly Sequence[]): number[][] | undefined {
    const max = this.settings.speculativeTokens;
    if (max <= 0) return undefined;
    let any = false;
    const drafts = rows.map((seq) => {
      if (seq.finish !== undefined || seq.misses >= MAX_MISSES || !isGreedy(seq.item.request.sampling)) return [];
      const room = Math.min(max, seq.item.budget - seq.generated);
      if (room <= 0) return [];
      const d = lookupDraft(seq.fed, room); // fed ends with the token just picked
      if (d.length > 0) any = true;
      return d;
    });
    return any ? drafts : undefined;
  }

  /**
   * One forward pass over each row's picked token and its drafts; a draft token is kept while it
   * is the token greedy decoding picks after what came before it, so the text is the one
   * step-by-step decoding gives. The logits after the last kept token pick the next one.
   */
  private async speculativeStep(forward: KvForward, rows: Sequence[], tokens: Int32Array, drafts: number[][]): Promise<void> {
    const before = forward.runMs;
    await forward.stepMany(rows.map((_, r) => [tokens[r]!, ...drafts[r]!]));
    this.totals.forwardMs += forward.runMs - before;
    this.totals.steps++;
    for (let r = 0; r < rows.length; r++) {
      const seq = rows[r]!;
      const draft = drafts[r]!;
      if (draft.length === 0) continue;
      let kept = 1;
      this.totals.draftedTokens += draft.length;
      for (let j = 0; j < draft.length && seq.finish === undefined; j++) {
        const id = this.sampler.pick(forward.logitsAt(r, j), seq.item.request.sampling, seq.rng);
        if (id !== draft[j]) break;
        kept++;
        this.totals.acceptedTokens++;
        this.push(seq, id);
        seq.fed.push(id);
      }
      forward.accept(r, kept);
      seq.misses = kept > 1 ? 0 : seq.misses + 1;
      if (seq.finish !== undefined) this.finished(forward, r, seq);
      if (kept > 1) this.stream(seq);
    }
  }

  /** Appends a generated token to the sequence and sets its finish reason if it ends there. */
  private push(seq: Sequence, id: number): void {
    seq.generated++;
    this.totals.generatedTokens++;
    if (this.tokenizer.eosTokenIds.has(id)) seq.finish = 'stop';
    else if (seq.completion.push(id)) seq.finish = 'stop';
    else if (seq.generated >= seq.item.budget) seq.finish = 'length';
  }

  /** Prefills `admitted` (cached prefixes first) and merges them into the batch. */
  private async admit(forward: KvForward, admitted: Sequence[]): Promise<void> {
    const cache = forward.supportsHoles ? this.settings.prefixCache : undefined;
    const padId = this.tokenizer.padTokenId;
    const hits = admitted.map((s) => cache?.lookup(s.item.promptIds));
    if (cache) await this.sharePrefix(cache, admitted, hits);
    const rows: PrefillRow[] = admitted.map((s, i) => {
      const hit = hits[i];
      return hit ? { ids: s.item.promptIds.slice(hit.length), prefix: hit } : { ids: s.item.promptIds };
    });
    for (const group of this.prefillGroups(rows)) {
      const fresh = new KvForward(this.session, this.graph);
      await fresh.prefillRows(group, padId);
      this.totals.forwardMs += fresh.runMs;
      this.totals.prefillMs += fresh.runMs;
      this.totals.batches++;
      this.totals.prefilledTokens += group.reduce((n, r) => n + r.ids.length, 0);
      fresh.runMs = 0;
      forward.absorb(fresh);
    }
  }

  /** Rows in order, cut where the next one would take the prefill's logits past the budget. */
  private prefillGroups(rows: PrefillRow[]): PrefillRow[][] {
    const vocab = this.settings.vocabSize;
    if (this.graph.logitsToKeepInput || vocab === undefined) return [rows];
    const groups: PrefillRow[][] = [];
    let group: PrefillRow[] = [];
    let width = 0;
    for (const row of rows) {
      const w = Math.max(width, row.ids.length);
      if (group.length > 0 && (group.length + 1) * w * vocab * 4 > this.settings.prefillLogitsBytes) {
        groups.push(group);
        group = [];
        width = 0;
      }
      group.push(row);
      width = Math.max(width, row.ids.length);
    }
    if (group.length > 0) groups.push(group);
    return groups;
  }

  /**
   * Rows admitted together without a cached prefix but with a long common one (a system prompt,
   * a few-shot header, the chat template) get it from one run of that prefix instead of each
   * running it.
   */
  private async sharePrefix(cache: PrefixCache, admitted: Sequence[], hits: (PrefixHit | undefined)[]): Promise<void> {
    const cold = admitted.map((_, i) => (hits[i] ? undefined : i)).filter((i): i is number => i !== undefined);
    if (cold.length < 2) return;
    const first = admitted[cold[0]!]!.item.promptIds;
    let shared = first.length - 1;
    for (const i of cold) {
      const ids = admitted[i]!.item.promptIds;
      shared = commonPrefix(first, ids, Math.min(shared, ids.length - 1));
    }
    if (shared < cache.minTokens) return;
    const prefix = first.slice(0, shared);
    const once = new KvForward(this.session, this.graph);
    await once.prefill([prefix], this.tokenizer.padTokenId);
    this.totals.forwardMs += once.runMs;
    this.totals.prefillMs += once.runMs;
    this.totals.prefilledTokens += shared;
    cache.add(once.rowCache(0, prefix));
    for (const i of cold) hits[i] = cache.lookup(admitted[i]!.item.promptIds);
  }

  /** A row that just ended: its keys and values go to the prefix cache, its result to the caller. */
  private finished(forward: KvForward, row: number, seq: Sequence): void {
    if (this.settings.prefixCache && forward.supportsHoles) this.settings.prefixCache.add(forward.rowCache(row, seq.fed));
    this.complete(seq);
  }

  private complete(seq: Sequence): void {
    if (!seq.completion.stopped) seq.completion.flush();
    const result: GenerationResult = {
      key: seq.item.request.key,
      text: seq.completion.text,
      promptTokens: seq.item.promptIds.length,
      completionTokens: seq.generated,
      finishReason: seq.finish ?? 'length',
      durationMs: performance.now() - seq.started,
    };
    const call = seq.call;
    if (call.failed) return;
    call.results[seq.index] = result;
    call.left--;
    try {
      call.hooks.onResult?.(result);
    } catch (err) {
      this.fail(call, err);
      return;
    }
    if (call.left === 0) call.resolve(call.results);
  }

  private stream(seq: Sequence): void {
    const onDelta = seq.call.hooks.onDelta;
    if (!onDelta || seq.call.failed) return;
    const piece = seq.completion.takeStreamable(seq.finish !== undefined);
    if (piece) onDelta(seq.item.request.key, piece);
  }

  /** Calls whose signal fired fail with CANCELLED; their rows stop (and leave at the next compaction). */
  private dropCancelled(rows: readonly Sequence[]): void {
    for (const s of [...rows, ...this.waiting]) if (s.call.hooks.signal?.aborted) this.fail(s.call, cancelled('generation'));
    this.waiting = this.waiting.filter((s) => !s.call.failed);
    for (const s of rows) if (s.call.failed && s.finish === undefined) s.finish = 'length';
  }

  private fail(call: Call, err: unknown): void {
    if (call.failed) return;
    call.failed = true;
    call.reject(err);
  }
}

/** Indices of the rows still generating. */
function openRows(rows: readonly Sequence[]): number[] {
  const keep: number[] = [];
  rows.forEach((s, r) => s.finish === undefined && keep.push(r));
  return keep;
}
