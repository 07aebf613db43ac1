import { EngineError, badInput } from '../errors';
import { linkSignals, runBounded } from '../generation/openai/concurrency';
import { HttpJsonClient, displayUrl, malformed } from '../generation/openai/http';
import { type HttpOptions, baseUrl, httpSettings, modelName, positiveInt } from '../generation/openai/settings';
import { type JsonObject, record } from '../generation/openai/wire';
import type { ScoreInput, ScoreResult, Scorer } from './scorer';
import { renderScoreText, scoreConversation } from './score-text';

/**
 * A reward model served over HTTP by vLLM (`vllm serve <model>` for a *ForSequenceClassification
 * reward model such as Skywork-Reward-V2; vLLM picks the pooling runner itself).
 *
 * Endpoints (vLLM serves both at the server root, not under /v1):
 * - POST /classify  {model, input: [texts]} or {model, messages: [...]}
 *   → {data: [{index, label, probs: [..num_classes], num_classes}]}
 * - POST /pooling   the same inputs → {data: [{index, data: [..] | [[..per token]]}]}
 *
 * What is sent ('messages', the default): one request per step with the conversation
 * `prompt + {role: 'assistant', content: response}` (a string prompt is one user message), so
 * the server applies the model's own chat template — what chat reward models were trained on.
 * vLLM takes one conversation per request; requests run `maxConcurrency` at a time.
 * 'text': steps are rendered with `renderScoreText` (score-text.ts) and sent `batchSize` texts per
 * request, for classifiers without a chat template.
 *
 * The value: by default the scorer sends `use_activation: false`, so vLLM returns the classifier
 * head's raw output: value = the raw logit of column `label`. With `activation: true` the server's
 * activation stays on and value = a probability (sigmoid for one column, softmax otherwise).
 * Servers that ignore `use_activation` (SGLang, vLLM before the option existed; older vLLM spelled
 * it `activation`: pass extraBody {activation: false}) return probabilities either way.
 * /pooling per-token output ([[..], [..]]): value = the last token's row, where sequence reward
 * heads read.
 *
 * raw (stored with each score): { endpoint, input, valueIs: 'logit' | 'probability', label,
 * output } where output is the server's data[i] (for per-token pooling: { tokens, last }).
 */
export interface HttpRewardScorerOptions extends HttpOptions {
  /** The server root, e.g. http://127.0.0.1:8001; a trailing /v1 is dropped. */
  baseUrl: string;
  /** The served model name. */
  model: string;
  /** Default 'classify'. */
  endpoint?: 'classify' | 'pooling';
  /** Overrides the path, e.g. '/v1/classify' for SGLang. */
  endpointPath?: string;
  /** Default 'messages'; see above. */
  input?: 'messages' | 'text';
  /** Keep the server's activation (value = probability). Default false (value = raw logit). */
  activation?: boolean;
  /** Which output column is the reward. Default 0 when the model has one column, else 1. */
  label?: number;
  /** 'text' input: texts per request. Default 16. */
  batchSize?: number;
  /** Requests in flight at once. Default 4. */
  maxConcurrency?: number;
  /** Fields added to every request body; they cannot replace model, input or messages. */
  extraBody?: JsonObject;
  /** Stored in scores.scorer. Default 'rm:http'. */
  name?: string;
}

const WHO = 'reward model (http)';
const ACTIVITY = 'reward-model scoring';

/** One text's output: the numbers a column is picked from, and what to store. */
interface Row {
  values: number[];
  output: unknown;
}

export class HttpRewardScorer implements Scorer {
  readonly name: string;
  private readonly client: HttpJsonClient;
  private readonly url: string;
  private readonly model: string;
  private readonly endpoint: 'classify' | 'pooling';
  private readonly input: 'messages' | 'text';
  private readonly activation: boolean;
  private readonly label: number | undefined;
  private readonly batchSize: number;
  private readonly maxConcurrency: number;
  private readonly extraBody: JsonObject;
  private readonly closing = new AbortController();

  constructor(options: HttpRewardScorerOptions) {
    const root = baseUrl(options.baseUrl, WHO, 'http://127.0.0.1:8001').replace(/\/v1$/, '');
    this.model = modelName(options.model, WHO);
    this.endpoint = options.endpoint ?? 'classify';
    if (this.endpoint !== 'classify' && this.endpoint !== 'pooling') throw badInput(`${WHO}: endpoint must be 'classify' or 'pooling', got '${String(this.endpoint)}'`);
    this.input = options.input ?? 'messages';
    if (this.input !== 'messages' && this.input !== 'text') throw badInput(`${WHO}: input must be 'messages' or 'text', got '${String(this.input)}'`);
    const path = options.endpointPath ?? `/${this.endpoint}`;
    if (!path.startsWith('/')) throw badInput(`${WHO}: endpointPath must start with '/', got '${path}'`);
    this.url = `${root}${path}`;
    this.activation = options.activation ?? false;
    if (options.label !== undefined && (!Number.isInteger(options.label) || options.label < 0)) throw badInput(`${WHO}: label must be a whole number ≥ 0, got ${options.label}`);
    this.label = options.label;
    this.batchSize = positiveInt(options.batchSize ?? 16, `${WHO}: batchSize`);
    this.maxConcurrency = positiveInt(options.maxConcurrency ?? 4, `${WHO}: maxConcurrency`);
    this.extraBody = options.extraBody ?? {};
    this.name = options.name ?? 'rm:http';
    this.client = new HttpJsonClient(httpSettings(options, WHO, this.model, ACTIVITY, 120_000, this.maxConcurrency));
  }

  /** Where the scores come from, for logs: model @ URL. */
  get source(): string {
    return `${this.model} @ ${displayUrl(this.url)}`;
  }

  async score(inputs: ScoreInput[], options: { signal?: AbortSignal } = {}): Promise<ScoreResult[]> {
    if (this.closing.signal.aborted) throw new EngineError('INTERNAL', `${WHO} (${this.source}) is closed`, 'create a new scorer');
    const link = linkSignals([options.signal, this.closing.signal]);
    const results = new Array<ScoreResult>(inputs.length);
    // Each request carries one conversation ('messages') or a batch of texts ('text').
    const groups: number[][] = [];
    const perRequest = this.input === 'messages' ? 1 : this.batchSize;
    for (let i = 0; i < inputs.length; i += perRequest) groups.push(Array.from({ length: Math.min(perRequest, inputs.length - i) }, (_, k) => i + k));
    try {
      await runBounded(
        groups.length,
        this.maxConcurrency,
        async (g, signal) => {
          const group = groups[g];
          const body = this.body(group.map((i) => inputs[i]));
          const rows = await this.client.postJson(this.url, body, (json) => this.parse(json, group.length), signal);
          group.forEach((i, k) => {
            results[i] = this.result(inputs[i], rows[k]);
          });
        },
        link.signal,
        ACTIVITY,
      );
    } finally {
      link.dispose();
    }
    return results;
  }

  async close(): Promise<void> {
    this.closing.abort();
    this.client.close();
  }

  private body(group: ScoreInput[]): JsonObject {
    const body: JsonObject = { ...this.extraBody, model: this.model };
    if (this.input === 'messages') {
      const [only] = group;
      body.messages = scoreConversation(only.prompt, only.response).map((m): JsonObject => ({ role: m.role, content: m.content }));
    } else {
      body.input = group.map((s) => renderScoreText(s.prompt, s.response));
    }
    if (!this.activation) body.use_activation = false;
    return body;
  }

  /** data[i] in index order, each turned into a row of numbers; `count` of them or it is malformed. */
  private parse(json: unknown, count: number): Row[] {
    const data = record(json, `the ${this.endpoint} response`).data;
    if (!Array.isArray(data)) throw malformed(`the ${this.endpoint} response has no "data" list`);
    if (data.length !== count) throw malformed(`the ${this.endpoint} response has ${data.length} results for ${count} inputs`);
    const items = data.map((d, i) => record(d, `data[${i}]`));
    if (items.every((d) => typeof d.index === 'number')) items.sort((a, b) => (a.index as number) - (b.index as number));
    return items.map((d, i) => (this.endpoint === 'classify' ? classifyRow(d, i) : poolingRow(d, i)));
  }

  private result(input: ScoreInput, row: Row): ScoreResult {
    const label = this.label ?? (row.values.length === 1 ? 0 : 1);
    if (label >= row.values.length) {
      throw badInput(
        `${WHO} ${this.source}: label ${label} is out of range: the model gives ${row.values.length} value(s) per text (step ${input.stepId})`,
        `set label to 0..${row.values.length - 1}`,
      );
    }
    return {
      stepId: input.stepId,
      value: row.values[label],
      raw: { endpoint: this.endpoint, input: this.input, valueIs: this.activation ? 'probability' : 'logit', label, output: row.output },
    };
  }
}

function classifyRow(d: Record<string, unknown>, i: number): Row {
  return { values: numbers(d.probs, `data[${i}].probs`), output: d };
}

/** A vector, or per-token rows of which the last is used; a bare number counts as one column. */
function poolingRow(d: Record<string, unknown>, i: number): Row {
  const data = d.data;
  const where = `data[${i}].data`;
  if (typeof data === 'number') return { values: [data], output: d };
  if (!Array.isArray(data) || data.length === 0) throw malformed(`${where} is not a non-empty list of numbers`);
  if (Array.isArray(data[0])) {
    const last = numbers(data[data.length - 1], `${where}[last]`);
    return { values: last, output: { index: d.index, tokens: data.length, last } };
  }
  return { values: numbers(data, where), output: d };
}

function numbers(value: unknown, where: string): number[] {
  if (!Array.isArray(value) || value.length === 0 || !value.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw malformed(`${where} is not a non-empty list of numbers`);
  }
  return value as number[];
}
