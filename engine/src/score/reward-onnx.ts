import { type InferenceSession, Tensor } from 'onnxruntime-node';
import { EngineError, badInput, cancelled } from '../errors';
import { readModelFolder, type ModelFolder } from '../generation/onnx/model-folder';
import { openCpuSession } from '../generation/onnx/session';
import { ModelTokenizer } from '../generation/onnx/tokenizer';
import type { PromptInput } from '../generation/backend';
import { silentLogger, type Logger } from '../log';
import type { ScoreInput, ScoreResult, Scorer } from './scorer';
import { renderScoreText, scoreConversation } from './score-text';

/**
 * A local reward model scored with onnxruntime-node (CPU): a *ForSequenceClassification model in
 * the Hugging Face / optimum layout — config.json (num_labels), tokenizer.json,
 * tokenizer_config.json and onnx/model.onnx taking input_ids and attention_mask [batch, tokens]
 * (int64; position_ids and token_type_ids are fed when the graph has them) and giving
 * logits [batch, num_labels]. `python -m aries_trainer rm` writes such a folder for a tiny model;
 * `optimum-cli export onnx --task text-classification` does for Hugging Face reward models.
 *
 * What the model reads (score-text.ts, the same as the trainer): the conversation
 * `prompt + {role: 'assistant', content: response}` — the original question x, never the
 * refinement prompt — through the model's chat template without a generation prompt; without a
 * chat template, renderScoreText's `role: content` lines. Nothing is added (the template adds
 * BOS / end-of-turn tokens itself). A text longer than max_position_embeddings is cut from the
 * left, keeping the end where the reward is read, and raw.truncated says by how many tokens.
 *
 * Texts are sorted by length and run `batchSize` at a time, right-padded with config.json's
 * pad_token_id: the token read is the last real one (where transformers' sequence classifiers read),
 * and the positions of real tokens are the same as unpadded, so batching does not change a score.
 *
 * value = the raw logit of column `label`; raw = { valueIs: 'logit', label, logits: [all columns] }.
 * Cancellation is checked between batches; score() calls run one after another.
 */
export interface OnnxRewardScorerOptions {
  /** Folder with config.json, tokenizer.json, tokenizer_config.json and onnx/model.onnx. */
  modelDir: string;
  /** Which logits column is the reward. Default 0 when the model has one label, else 1 (the positive class). */
  label?: number;
  /** Texts per forward pass. Default 8. */
  batchSize?: number;
  /** onnxruntime's intra-op threads (default: onnxruntime's choice). */
  intraOpNumThreads?: number;
  /** Stored in scores.scorer. Default 'rm:onnx'. */
  name?: string;
  logger?: Logger;
}

/** What the graph takes and gives, checked once when the model loads. */
export interface RewardGraph {
  modelPath: string;
  hasPositionIds: boolean;
  hasTokenTypeIds: boolean;
  /** The logits' last dimension when the graph fixes it. */
  numLabels: number | undefined;
}

const WHO = 'reward model (onnx)';
const EXPORT_HINT = 'export a sequence-classification model: `python -m aries_trainer rm` (tiny models) or `optimum-cli export onnx --task text-classification`';
const KNOWN_INPUTS = ['input_ids', 'attention_mask', 'position_ids', 'token_type_ids'];

type Metadata = readonly InferenceSession.ValueMetadata[];

export function describeRewardGraph(inputs: Metadata, outputs: Metadata, modelPath: string): RewardGraph {
  const names = inputs.map((m) => m.name);
  const logits = outputs.find((m) => m.name === 'logits');
  const perToken = logits?.isTensor === true && logits.shape.length === 3;
  if (names.some((n) => n.startsWith('past_key_values.')) || perToken) {
    throw badInput(`${modelPath}: this is a text-generation export (logits per token${perToken ? `, shape [${logits.shape.join(', ')}]` : ', past_key_values inputs'}), not a reward model giving one score per text`, EXPORT_HINT);
  }
  for (const name of ['input_ids', 'attention_mask']) {
    if (!names.includes(name)) throw badInput(`${modelPath}: the graph has no "${name}" input (it has ${names.map((n) => `"${n}"`).join(', ')})`, EXPORT_HINT);
  }
  const unknown = names.filter((n) => !KNOWN_INPUTS.includes(n));
  if (unknown.length > 0) {
    throw badInput(`${modelPath}: the graph has input${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => `"${n}"`).join(', ')} that the scorer does not know how to feed`, `it feeds ${KNOWN_INPUTS.join(', ')}; ${EXPORT_HINT}`);
  }
  for (const m of inputs) {
    if (m.isTensor && m.type !== 'int64') throw badInput(`${modelPath}: input "${m.name}" is ${m.type}; the scorer feeds int64`, EXPORT_HINT);
  }
  if (!logits) throw badInput(`${modelPath}: the graph has no "logits" output (it has ${outputs.map((m) => `"${m.name}"`).join(', ')})`, EXPORT_HINT);
  let numLabels: number | undefined;
  if (logits.isTensor) {
    if (logits.type !== 'float32') throw badInput(`${modelPath}: "logits" is ${logits.type}; the scorer reads float32`, 'export the model in float32');
    if (logits.shape.length !== 0 && logits.shape.length !== 2) {
      throw badInput(`${modelPath}: "logits" has shape [${logits.shape.join(', ')}]; a reward model gives [batch, num_labels]`, EXPORT_HINT);
    }
    const last = logits.shape[1];
    numLabels = typeof last === 'number' && last > 0 ? last : undefined;
  }
  return { modelPath, hasPositionIds: names.includes('position_ids'), hasTokenTypeIds: names.includes('token_type_ids'), numLabels };
}

/** num_labels from config.json (num_labels, else the size of id2label); undefined when it says neither. */
function configLabels(folder: ModelFolder): number | undefined {
  const { num_labels: n, id2label } = folder.config;
  if (n !== undefined && n !== null) {
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw badInput(`${folder.configPath}: "num_labels" is ${JSON.stringify(n)}; it must be a whole number ≥ 1`);
    return n;
  }
  return typeof id2label === 'object' && id2label !== null ? Object.keys(id2label).length || undefined : undefined;
}

interface Encoded {
  ids: number[];
  truncated: number;
}

export class OnnxRewardScorer implements Scorer {
  readonly name: string;
  readonly modelDir: string;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly folder: ModelFolder,
    private readonly session: InferenceSession,
    private readonly graph: RewardGraph,
    private readonly tokenizer: ModelTokenizer,
    private readonly numLabels: number | undefined,
    private readonly label: number | undefined,
    private readonly padId: number,
    private readonly batchSize: number,
    name: string,
  ) {
    this.name = name;
    this.modelDir = folder.dir;
  }

  /** Reads and checks the folder, then loads the graph. Errors name the file and what to do. */
  static async open(options: OnnxRewardScorerOptions): Promise<OnnxRewardScorer> {
    const batchSize = options.batchSize ?? 8;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw badInput(`${WHO}: batchSize is ${batchSize}; use a whole number ≥ 1`);
    if (options.label !== undefined && (!Number.isInteger(options.label) || options.label < 0)) throw badInput(`${WHO}: label must be a whole number ≥ 0, got ${options.label}`);
    const folder = readModelFolder(options.modelDir, EXPORT_HINT);
    const tokenizer = new ModelTokenizer(folder);
    const fromConfig = configLabels(folder);
    const session = await openCpuSession(folder.modelPath, options.intraOpNumThreads || undefined);
    try {
      const graph = describeRewardGraph(session.inputMetadata, session.outputMetadata, folder.modelPath);
      if (fromConfig !== undefined && graph.numLabels !== undefined && fromConfig !== graph.numLabels) {
        throw badInput(`${folder.modelPath}: the graph gives ${graph.numLabels} logits per text but ${folder.configPath} says num_labels = ${fromConfig}`, 'use the config.json the graph was exported with');
      }
      const numLabels = graph.numLabels ?? fromConfig;
      if (options.label !== undefined && numLabels !== undefined && options.label >= numLabels) {
        throw badInput(`${WHO}: label ${options.label} is out of range: ${folder.dir} gives ${numLabels} logit(s) per text`, `set label to 0..${numLabels - 1}`);
      }
      // transformers' sequence classifiers find the last real token by config.json's pad_token_id.
      const padId = folder.padTokenId ?? tokenizer.padTokenId;
      const name = options.name ?? 'rm:onnx';
      (options.logger ?? silentLogger).debug(`${WHO}: ${folder.modelPath} (${numLabels ?? '?'} label(s), batch ${batchSize}, ${tokenizer.hasChatTemplate ? 'chat template' : 'plain text'})`);
      return new OnnxRewardScorer(folder, session, graph, tokenizer, numLabels, options.label, padId, batchSize, name);
    } catch (err) {
      await session.release();
      throw err;
    }
  }

  /** The token ids the model reads for one step, before any cut (see the class comment). */
  tokenIds(prompt: PromptInput, response: string): number[] {
    const text = this.tokenizer.hasChatTemplate ? this.tokenizer.renderChat(scoreConversation(prompt, response), false) : renderScoreText(prompt, response);
    return this.tokenizer.encode(text);
  }

  score(inputs: ScoreInput[], options: { signal?: AbortSignal } = {}): Promise<ScoreResult[]> {
    const run = this.queue.then(() => this.run(inputs, options.signal));
    this.queue = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue;
    await this.session.release();
  }

  private async run(inputs: ScoreInput[], signal: AbortSignal | undefined): Promise<ScoreResult[]> {
    if (this.closed) throw new EngineError('INTERNAL', `${WHO} for ${this.modelDir} is closed`, 'create a new scorer');
    const encoded = inputs.map((input) => this.encode(input));
    // Similar lengths together keep padding (wasted compute) small; results keep input order.
    const order = encoded.map((_, i) => i).sort((a, b) => encoded[a]!.ids.length - encoded[b]!.ids.length);
    const results = new Array<ScoreResult>(inputs.length);
    for (let start = 0; start < order.length; start += this.batchSize) {
      if (signal?.aborted) throw cancelled('reward-model scoring');
      const batch = order.slice(start, start + this.batchSize);
      const rows = await this.forward(batch.map((i) => encoded[i]!.ids));
      batch.forEach((i, k) => {
        results[i] = this.result(inputs[i]!, rows[k]!, encoded[i]!.truncated);
      });
    }
    return results;
  }

  private encode(input: ScoreInput): Encoded {
    let ids: number[];
    try {
      ids = this.tokenIds(input.prompt, input.response);
    } catch (err) {
      throw badInput(`${WHO}: step ${input.stepId}: ${(err as Error).message}`);
    }
    if (ids.length === 0) throw badInput(`${WHO}: step ${input.stepId}: the text encodes to no tokens`);
    const max = this.folder.shape.maxPositions;
    if (max === undefined || ids.length <= max) return { ids, truncated: 0 };
    return { ids: ids.slice(ids.length - max), truncated: ids.length - max };
  }

  /** One forward pass over right-padded rows; the logits of each row. */
  private async forward(rows: number[][]): Promise<number[][]> {
    const b = rows.length;
    const t = Math.max(...rows.map((r) => r.length));
    const ids = new BigInt64Array(b * t).fill(BigInt(this.padId));
    const mask = new BigInt64Array(b * t);
    const positions = new BigInt64Array(b * t);
    rows.forEach((row, r) => {
      for (let j = 0; j < t; j++) {
        if (j < row.length) {
          ids[r * t + j] = BigInt(row[j]!);
          mask[r * t + j] = 1n;
        }
        positions[r * t + j] = BigInt(Math.min(j, row.length - 1));
      }
    });
    const feeds: Record<string, Tensor> = { input_ids: new Tensor('int64', ids, [b, t]), attention_mask: new Tensor('int64', mask, [b, t]) };
    if (this.graph.hasPositionIds) feeds.position_ids = new Tensor('int64', positions, [b, t]);
    if (this.graph.hasTokenTypeIds) feeds.token_type_ids = new Tensor('int64', new BigInt64Array(b * t), [b, t]);
    const out = (await this.session.run(feeds)).logits;
    if (!out || out.type !== 'float32' || out.dims.length !== 2 || out.dims[0] !== b) {
      throw new EngineError('BACKEND', `${this.graph.modelPath}: "logits" came back as ${out ? `${out.type} [${out.dims.join(', ')}]` : 'nothing'} for a batch of ${b}; expected float32 [${b}, num_labels]`, EXPORT_HINT);
    }
    const labels = out.dims[1]!;
    const data = out.data as Float32Array;
    return rows.map((_, r) => Array.from(data.subarray(r * labels, (r + 1) * labels)));
  }

  private result(input: ScoreInput, logits: number[], truncated: number): ScoreResult {
    const label = this.label ?? ((this.numLabels ?? logits.length) === 1 ? 0 : 1);
    if (label >= logits.length) {
      throw badInput(`${WHO}: label ${label} is out of range: ${this.modelDir} gives ${logits.length} logit(s) per text (step ${input.stepId})`, `set label to 0..${logits.length - 1}`);
    }
    const raw = { valueIs: 'logit', label, logits, ...(truncated > 0 ? { truncated } : {}) };
    return { stepId: input.stepId, value: logits[label]!, raw };
  }
}
