import type { InferenceSession } from 'onnxruntime-node';
import { badInput, EngineError } from '../../errors';
import { silentLogger, type Logger } from '../../log';
import type { GenerateOptions, GenerationBackend, GenerationRequest, GenerationResult } from '../backend';
import { decodeBatch, type BatchItem } from './decoder';
import { loadDecoderSession, type DecoderGraph } from './decoder-graph';
import { KvForward } from './kv-forward';
import { type ModelFolder, type OnnxWeights, readModelFolder } from './model-folder';
import { TokenSampler } from './sampling';
import { ModelTokenizer } from './tokenizer';

/**
 * Local generation with onnxruntime-node (CPU) from a Hugging Face / optimum decoder export.
 * Requests are sorted by prompt length and decoded in batches of `batchSize`; calls to generate()
 * run one after another (a second call waits for the first).
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
  logger?: Logger;
}

/** Where the time went, summed over every generate() call so far. */
export interface OnnxGenerationStats {
  batches: number;
  steps: number;
  generatedTokens: number;
  /** Time inside session.run. */
  forwardMs: number;
  /** Wall time of the batches (forward passes + tokenization, sampling, cache handling). */
  totalMs: number;
}

export const DEFAULT_BATCH_SIZE = 16;

export class OnnxBackend implements GenerationBackend {
  readonly kind = 'onnx';
  readonly modelId: string;
  private readonly sampler = new TokenSampler();
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private readonly totals: OnnxGenerationStats = { batches: 0, steps: 0, generatedTokens: 0, forwardMs: 0, totalMs: 0 };

  private constructor(
    private readonly folder: ModelFolder,
    private readonly session: InferenceSession,
    private readonly graph: DecoderGraph,
    readonly tokenizer: ModelTokenizer,
    private readonly batchSize: number,
    private readonly logger: Logger,
  ) {
    this.modelId = folder.dir;
  }

  /** Reads and checks the model folder, then loads the graph. Errors name the file and what to do. */
  static async open(options: OnnxBackendOptions): Promise<OnnxBackend> {
    const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw badInput(`onnx backend: batchSize is ${batchSize}; use a whole number ≥ 1`);
    const threads = options.intraOpNumThreads;
    if (threads !== undefined && (!Number.isInteger(threads) || threads < 0)) throw badInput(`onnx backend: intraOpNumThreads is ${threads}; use a whole number ≥ 0 (0 = onnxruntime's default)`);
    const folder = readModelFolder(options.modelDir, undefined, options.weights ?? 'fp32');
    const tokenizer = new ModelTokenizer(folder);
    const { session, graph } = await loadDecoderSession(folder, threads);
    const logger = options.logger ?? silentLogger;
    logger.debug(`onnx backend: ${folder.modelPath} (${graph.layers} layers, cache ${graph.pastDtype}, batch ${batchSize})`);
    if (!graph.hasPositionIds && batchSize > 1) {
      // The graph then numbers positions from the first (padding) column: shorter prompts in a batch
      // see shifted positions and may not match what they give alone.
      logger.warn(`${folder.modelPath}: the graph has no position_ids input; batched texts may differ from single ones (use batchSize 1 or re-export with position_ids)`);
    }
    return new OnnxBackend(folder, session, graph, tokenizer, batchSize, logger);
  }

  get stats(): OnnxGenerationStats {
    return { ...this.totals };
  }

  generate(requests: GenerationRequest[], options: GenerateOptions = {}): Promise<GenerationResult[]> {
    const run = this.queue.then(() => this.run(requests, options));
    this.queue = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue;
    await this.session.release();
  }

  private async run(requests: GenerationRequest[], options: GenerateOptions): Promise<GenerationResult[]> {
    if (this.closed) throw new EngineError('BACKEND', `onnx backend for ${this.modelId} is closed`, 'open a new one');
    const items = requests.map((r) => this.prepare(r));
    // Similar lengths together keep left padding (wasted compute) small; results keep request order.
    const order = items.map((_, i) => i).sort((a, b) => items[a]!.promptIds.length - items[b]!.promptIds.length);
    const results = new Array<GenerationResult>(requests.length);
    for (let start = 0; start < order.length; start += this.batchSize) {
      const batch = order.slice(start, start + this.batchSize);
      const forward = new KvForward(this.session, this.graph);
      const hooks = { ...(options.signal ? { signal: options.signal } : {}), ...(options.onDelta ? { onDelta: options.onDelta } : {}) };
      const { results: batchResults, timings } = await decodeBatch(forward, this.tokenizer, this.sampler, batch.map((i) => items[i]!), hooks);
      this.totals.batches++;
      this.totals.steps += timings.steps;
      this.totals.generatedTokens += timings.generatedTokens;
      this.totals.forwardMs += timings.forwardMs;
      this.totals.totalMs += timings.totalMs;
      this.logger.debug(
        `onnx batch of ${batch.length}: ${timings.generatedTokens} tokens in ${timings.totalMs.toFixed(0)} ms (${timings.forwardMs.toFixed(0)} ms in forward passes, ${timings.steps} steps)`,
      );
      batchResults.forEach((result, j) => {
        results[batch[j]!] = result;
        options.onResult?.(result);
      });
    }
    return results;
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
