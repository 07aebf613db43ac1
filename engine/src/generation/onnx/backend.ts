import type { InferenceSession } from 'onnxruntime-node';
import { badInput, EngineError } from '../../errors';
import { silentLogger, type Logger } from '../../log';
import type { GenerateOptions, GenerationBackend, GenerationRequest, GenerationResult } from '../backend';
import { DecodeLoop, type BatchItem } from './decoder';
import { loadDecoderSession, type DecoderGraph } from './decoder-graph';
import { PrefixCache } from './prefix-cache';
import { type ModelFolder, type OnnxCacheGraph, type OnnxWeights, readModelFolder } from './model-folder';
import { TokenSampler } from './sampling';
import { ModelTokenizer } from './tokenizer';

/**
 * Local generation with onnxruntime-node (CPU) from a Hugging Face / optimum decoder export.
 * Up to `batchSize` sequences decode together (decoder.ts), with a prefix cache of finished
 * sequences' keys and values; with continuous batching, calls made while one runs share its batch
 * (otherwise a call waits for the batch before it).
 */

export interface OnnxBackendOptions {
  /** Folder with config.json, tokenizer.json, tokenizer_config.json and onnx/model.onnx. */
  modelDir: string;
  /** Sequences decoded together (default 16). */
  batchSize?: number;
  /** onnxruntime's intra-op threads (default: onnxruntime's choice, one per physical core). */
  intraOpNumThreads?: number;
  /** 'int8': run onnx/model_quantized.onnx (python -m aries_trainer quantize) instead of the exported graph. */
  weights?: OnnxWeights;
  /** fp32: 'auto' (default) runs onnx/model_slots.onnx when the folder has one, 'present' optimum's graph, 'slots' requires the former. */
  cacheGraph?: OnnxCacheGraph;
  /**
   * Requests waiting (from this call or a call made meanwhile) take the slots of finished rows
   * while the batch runs, instead of a batch running to its longest member (default false: on a
   * CPU the mixed lengths cost more than the idle slots save, docs/benchmarks.md).
   */
  continuousBatching?: boolean;
  /** Memory for keys and values of finished sequences that later prompts start with (default 1 GiB; 0 = off). */
  prefixCacheBytes?: number;
  /** Greedy requests: draft tokens from the request's own context checked per step (default 0 = off). Same text either way. */
  speculativeTokens?: number;
  /** Prefills are split by rows to keep their logits (all prompt positions, when the graph has no logits_to_keep) under this (default 256 MiB). */
  prefillLogitsBytes?: number;
  logger?: Logger;
}

/** Where the time went, summed over every generate() call so far. */
export interface OnnxGenerationStats {
  batches: number;
  steps: number;
  generatedTokens: number;
  /** Time inside session.run. */
  forwardMs: number;
  /** Of forwardMs, in prefills (prompts run into the cache). */
  prefillMs: number;
  /** Wall time with work in the decoding loop (forward passes + sampling, cache handling). */
  totalMs: number;
  /** Prompt tokens that ran through the model. */
  prefilledTokens: number;
  /** Prompt tokens taken from the prefix cache instead. */
  reusedTokens: number;
  /** Draft tokens checked by speculation, and of those kept. */
  draftedTokens: number;
  acceptedTokens: number;
}

export const DEFAULT_BATCH_SIZE = 16;
export const DEFAULT_PREFIX_CACHE_BYTES = 1 << 30;
export const DEFAULT_SPECULATIVE_TOKENS = 0;
export const DEFAULT_PREFILL_LOGITS_BYTES = 256 * 2 ** 20;

export class OnnxBackend implements GenerationBackend {
  readonly kind = 'onnx';
  readonly modelId: string;
  /** Calls made while another runs join its batch (continuous batching): issue requests as soon as they are known. */
  readonly mergesCalls: boolean;
  private closed = false;
  private readonly loop: DecodeLoop;
  private readonly prefixCache: PrefixCache | undefined;

  private constructor(
    private readonly folder: ModelFolder,
    private readonly session: InferenceSession,
    graph: DecoderGraph,
    readonly tokenizer: ModelTokenizer,
    private readonly logger: Logger,
    settings: { batchSize: number; continuous: boolean; prefixCacheBytes: number; speculativeTokens: number; prefillLogitsBytes: number },
  ) {
    this.modelId = folder.dir;
    // Prefixes and merged rows need explicit positions (see KvForward.supportsHoles).
    const holes = graph.hasPositionIds;
    this.prefixCache = holes && settings.prefixCacheBytes > 0 ? new PrefixCache(settings.prefixCacheBytes) : undefined;
    this.mergesCalls = holes && settings.continuous;
    this.loop = new DecodeLoop(session, graph, tokenizer, new TokenSampler(), {
      batchSize: settings.batchSize, continuous: this.mergesCalls, prefixCache: this.prefixCache, speculativeTokens: holes ? settings.speculativeTokens : 0,
      // Split prefills are merged into one batch, which needs explicit positions too.
      prefillLogitsBytes: holes ? settings.prefillLogitsBytes : Infinity, vocabSize: folder.shape.vocabSize,
    });
  }

  /** Reads and checks the model folder, then loads the graph. Errors name the file and what to do. */
  static async open(options: OnnxBackendOptions): Promise<OnnxBackend> {
    const batchSize = wholeNumber('batchSize', options.batchSize ?? DEFAULT_BATCH_SIZE, 1);
    const threads = options.intraOpNumThreads === undefined ? undefined : wholeNumber('intraOpNumThreads', options.intraOpNumThreads, 0, " (0 = onnxruntime's default)");
    const folder = readModelFolder(options.modelDir, undefined, options.weights ?? 'fp32', options.cacheGraph ?? 'auto');
    const tokenizer = new ModelTokenizer(folder);
    const { session, graph } = await loadDecoderSession(folder, threads);
    const logger = options.logger ?? silentLogger;
    logger.debug(`onnx backend: ${folder.modelPath} (${graph.layers} layers, cache ${graph.pastDtype} ${graph.cacheLayout}, batch ${batchSize})`);
    if (!graph.hasPositionIds && batchSize > 1) {
      // The graph then numbers positions from the first (padding) column: shorter prompts in a batch
      // see shifted positions and may not match what they give alone.
      logger.warn(`${folder.modelPath}: the graph has no position_ids input; batched texts may differ from single ones (use batchSize 1 or re-export with position_ids)`);
    }
    const prefixCacheBytes = wholeNumber('prefixCacheBytes', options.prefixCacheBytes ?? DEFAULT_PREFIX_CACHE_BYTES, 0, ' (0 = off)');
    const speculativeTokens = wholeNumber('speculativeTokens', options.speculativeTokens ?? DEFAULT_SPECULATIVE_TOKENS, 0, ' (0 = off)');
    const prefillLogitsBytes = wholeNumber('prefillLogitsBytes', options.prefillLogitsBytes ?? DEFAULT_PREFILL_LOGITS_BYTES, 1);
    return new OnnxBackend(folder, session, graph, tokenizer, logger, { batchSize, continuous: options.continuousBatching ?? false, prefixCacheBytes, speculativeTokens, prefillLogitsBytes });
  }

  get stats(): OnnxGenerationStats {
    const t = this.loop.totals;
    const c = this.prefixCache?.stats;
    return { batches: t.batches, steps: t.steps, generatedTokens: t.generatedTokens, forwardMs: t.forwardMs, prefillMs: t.prefillMs, totalMs: t.totalMs, prefilledTokens: t.prefilledTokens, reusedTokens: c?.reusedTokens ?? 0, draftedTokens: t.draftedTokens, acceptedTokens: t.acceptedTokens };
  }

  async generate(requests: GenerationRequest[], options: GenerateOptions = {}): Promise<GenerationResult[]> {
    if (this.closed) throw new EngineError('BACKEND', `onnx backend for ${this.modelId} is closed`, 'open a new one');
    const items = requests.map((r) => this.prepare(r));
    const before = this.stats;
    const results = await this.loop.submit(items, options);
    const d = this.stats;
    // With continuous batching other calls share these steps: the figures are the loop's while this call ran.
    this.logger.debug(
      `onnx call of ${requests.length}: ${d.generatedTokens - before.generatedTokens} tokens, ${d.steps - before.steps} steps, ` +
        `${(d.totalMs - before.totalMs).toFixed(0)} ms (${(d.forwardMs - before.forwardMs).toFixed(0)} in forward passes), ` +
        `${d.prefilledTokens - before.prefilledTokens} prompt tokens run, ${d.reusedTokens - before.reusedTokens} from the prefix cache`,
    );
    return results;
  }

  /** Forgets every cached prefix (the next prompts run in full). */
  clearPrefixCache(): void {
    this.prefixCache?.clear();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.loop.idle();
    this.prefixCache?.clear();
    await this.session.release();
  }

  /** Checks one request and encodes its prompt; nothing runs until every request has passed. */
  private prepare(request: GenerationRequest): BatchItem {
    const where = `request ${JSON.stringify(request.key)}`;
    const s = request.sampling;
    const check = (ok: boolean, what: string) => {
      if (!ok) throw badInput(`${where}: ${what}`);
    };
    check(Number.isFinite(s.temperature) && s.temperature >= 0, `temperature is ${s.temperature}; use 0 (greedy) or more`);
    check(s.topP > 0 && s.topP <= 1, `topP is ${s.topP}; use a number in (0, 1]`);
    check(Number.isInteger(s.topK) && s.topK >= 0, `topK is ${s.topK}; use a whole number ≥ 0 (0 = off)`);
    check(Number.isInteger(s.maxNewTokens) && s.maxNewTokens >= 0, `maxNewTokens is ${s.maxNewTokens}; use a whole number ≥ 0`);
    check(Number.isSafeInteger(s.seed), `seed is ${s.seed}; use a whole number`);
    check(Array.isArray(s.stop) && s.stop.every((x) => typeof x === 'string'), 'stop must be a list of strings');
    let promptIds: number[];
    try {
      promptIds = this.tokenizer.encode(this.tokenizer.promptText(request.prompt));
    } catch (err) {
      throw badInput(`${where}: ${(err as Error).message}`);
    }
    if (promptIds.length === 0) throw badInput(`${where}: the prompt is empty (it encodes to no tokens)`);
    const maxPositions = this.folder.shape.maxPositions;
    if (maxPositions !== undefined && promptIds.length >= maxPositions) {
      throw badInput(`${where}: the prompt is ${promptIds.length} tokens; ${this.modelId} takes at most ${maxPositions} (max_position_embeddings)`, 'shorten the prompt');
    }
    const budget = maxPositions === undefined ? s.maxNewTokens : Math.min(s.maxNewTokens, maxPositions - promptIds.length);
    return { request, promptIds, budget };
  }
}

/** An option that must be a whole number ≥ min, or a BAD_INPUT error naming it. */
function wholeNumber(name: string, value: number, min: number, meaning = ''): number {
  if (!Number.isInteger(value) || value < min) throw badInput(`onnx backend: ${name} is ${value}; use a whole number ≥ ${min}${meaning}`);
  return value;
}
