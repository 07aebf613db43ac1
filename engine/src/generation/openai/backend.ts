import { EngineError, badInput } from '../../errors';
import type { ChatMessage, FinishReason, GenerateOptions, GenerationBackend, GenerationRequest, GenerationResult, SamplingParams } from '../backend';
import { linkSignals, runBounded } from './concurrency';
import { HttpJsonClient, displayUrl } from './http';
import { type HttpOptions, baseUrl, httpSettings, modelName, positiveInt } from './settings';
import { type ApiMode, type JsonObject, cutAtStop, parseCompletion, parseStreamChunk, requestBody } from './wire';

/**
 * Generation on any OpenAI-compatible server: vLLM, SGLang, llama.cpp server, Ollama.
 * Requests run with bounded concurrency; each result is reported as its response arrives, and
 * with `onDelta` every request is streamed (SSE) so text shows as it is produced.
 */
export interface OpenAIBackendOptions extends HttpOptions {
  /** The API root, e.g. http://127.0.0.1:8000/v1 (vLLM), http://127.0.0.1:11434/v1 (Ollama). */
  baseUrl: string;
  /** The served model name, sent in every request. */
  model: string;
  /**
   * 'chat' (default): POST /chat/completions with messages; the server applies the model's chat
   * template, and a string prompt becomes one user message. 'completions': POST /completions with
   * the prompt text as is; chat prompts are refused (render them first).
   */
  mode?: ApiMode;
  /** Requests in flight at once; default 8. */
  maxConcurrency?: number;
  /**
   * Fields added to every request body, e.g. { repetition_penalty: 1.1 } or
   * { chat_template_kwargs: { enable_thinking: false } }. They cannot replace model, prompt,
   * sampling or stream fields.
   */
  extraBody?: JsonObject;
  /**
   * Send the requests' stop strings (default true). false: they are not sent, and each answer is
   * cut at the first one here, for servers that mishandle `stop` (transformers serve 4.57).
   */
  serverStop?: boolean;
  /**
   * Send the first request alone, then the rest concurrently (default false): for servers that
   * load a model on its first request and fail concurrent first requests (transformers serve).
   */
  loadFirst?: boolean;
}

const WHO = 'openai backend';
const EXAMPLE_URL = 'http://127.0.0.1:8000/v1';

export class OpenAIBackend implements GenerationBackend {
  readonly kind = 'openai';
  readonly modelId: string;
  private readonly client: HttpJsonClient;
  private readonly url: string;
  private readonly model: string;
  private readonly mode: ApiMode;
  private readonly maxConcurrency: number;
  private readonly extraBody: JsonObject;
  private readonly serverStop: boolean;
  private readonly loadFirst: boolean;
  /** close() aborts everything still in flight. */
  private readonly closing = new AbortController();
  /** Whether a request of this backend has been answered (the model is loaded on the server). */
  private answered = false;

  constructor(options: OpenAIBackendOptions) {
    const base = baseUrl(options.baseUrl, WHO, EXAMPLE_URL);
    if (/\/(chat\/)?completions$/.test(base)) {
      throw badInput(`${WHO}: base URL '${options.baseUrl}' names an endpoint`, `give the API root (e.g. ${EXAMPLE_URL}); the endpoint follows from the mode`);
    }
    this.model = modelName(options.model, WHO);
    this.mode = options.mode ?? 'chat';
    if (this.mode !== 'chat' && this.mode !== 'completions') throw badInput(`${WHO}: mode must be 'chat' or 'completions', got '${String(this.mode)}'`);
    this.maxConcurrency = positiveInt(options.maxConcurrency ?? 8, `${WHO}: maxConcurrency`);
    this.extraBody = options.extraBody ?? {};
    this.serverStop = options.serverStop ?? true;
    this.loadFirst = options.loadFirst ?? false;
    this.url = `${base}${this.mode === 'chat' ? '/chat/completions' : '/completions'}`;
    this.client = new HttpJsonClient(httpSettings(options, WHO, this.model, 'generation', 300_000, this.maxConcurrency));
    this.modelId = `${this.model} @ ${displayUrl(base)}`;
  }

  async generate(requests: GenerationRequest[], options: GenerateOptions = {}): Promise<GenerationResult[]> {
    if (this.closing.signal.aborted) throw new EngineError('INTERNAL', `${WHO} (${this.modelId}) is closed`, 'create a new backend');
    requests.forEach((r) => this.check(r));
    const link = linkSignals([options.signal, this.closing.signal]);
    const results = new Array<GenerationResult>(requests.length);
    const run = async (index: number, signal: AbortSignal): Promise<void> => {
      const result = await this.one(requests[index]!, signal, options.onDelta);
      results[index] = result;
      options.onResult?.(result);
    };
    try {
      // loadFirst: the first request of a backend goes alone, so a server that loads the model on
      // demand without a lock loads it once instead of once per concurrent request
      // (transformers serve fails those with HTTP 500; docs/servers.md).
      let first = 0;
      if (this.loadFirst && !this.answered && requests.length > 0) {
        await runBounded(1, 1, (_i, signal) => run(0, signal), link.signal, 'generation');
        this.answered = true;
        first = 1;
      }
      await runBounded(requests.length - first, this.maxConcurrency, (index, signal) => run(index + first, signal), link.signal, 'generation');
    } finally {
      link.dispose();
    }
    return results;
  }

  async close(): Promise<void> {
    this.closing.abort();
    this.client.close();
  }

  /** Refuses what no server would accept, before anything is sent. */
  private check(r: GenerationRequest): void {
    if (this.mode === 'completions' && typeof r.prompt !== 'string') {
      throw badInput(
        `${WHO}: request ${r.key} is a chat (${r.prompt.length} messages), but mode 'completions' sends plain text`,
        "use mode 'chat' so the server applies the model's chat template, or render the chat to text before generating",
      );
    }
    const s = r.sampling;
    if (!Number.isInteger(s.maxNewTokens) || s.maxNewTokens < 1) throw badInput(`${WHO}: request ${r.key}: maxNewTokens must be a whole number ≥ 1, got ${s.maxNewTokens}`);
    if (!(s.temperature >= 0)) throw badInput(`${WHO}: request ${r.key}: temperature must be ≥ 0, got ${s.temperature}`);
    if (!(s.topP > 0 && s.topP <= 1)) throw badInput(`${WHO}: request ${r.key}: topP must be in (0, 1], got ${s.topP}`);
    if (!Number.isInteger(s.topK) || s.topK < 0) throw badInput(`${WHO}: request ${r.key}: topK must be a whole number ≥ 0, got ${s.topK}`);
    if (!Number.isInteger(s.seed)) throw badInput(`${WHO}: request ${r.key}: seed must be a whole number, got ${s.seed}`);
  }

  private async one(r: GenerationRequest, signal: AbortSignal, onDelta: GenerateOptions['onDelta']): Promise<GenerationResult> {
    const started = Date.now();
    const prompt: string | ChatMessage[] = this.mode === 'chat' && typeof r.prompt === 'string' ? [{ role: 'user', content: r.prompt }] : r.prompt;
    // A stream is asked for only when the caller shows text as it comes; the answer is read in
    // either shape whatever was asked, since some servers (`transformers serve`) always stream.
    return this.collect(r, prompt, r.sampling, signal, onDelta !== undefined, onDelta ?? (() => {}), started);
  }

  private async collect(
    r: GenerationRequest,
    prompt: string | ChatMessage[],
    sampling: SamplingParams,
    signal: AbortSignal,
    stream: boolean,
    onDelta: NonNullable<GenerateOptions['onDelta']>,
    started: number,
  ): Promise<GenerationResult> {
    let text = '';
    let pieces = 0;
    let finishReason: FinishReason = 'stop';
    let usage: { promptTokens: number; completionTokens: number } | undefined;
    const body = requestBody(this.mode, this.model, prompt, sampling, stream, this.extraBody, this.serverStop);
    await this.client.postStream(
      this.url,
      body,
      {
        event: (json) => {
          const chunk = parseStreamChunk(json, this.mode);
          if (chunk.finishReason) finishReason = chunk.finishReason;
          if (chunk.usage) usage = chunk.usage;
          if (chunk.delta !== '') {
            text += chunk.delta;
            pieces++;
            onDelta(r.key, chunk.delta);
          }
        },
        whole: (json) => {
          const c = parseCompletion(json, this.mode);
          ({ text, finishReason } = c);
          usage = { promptTokens: c.promptTokens, completionTokens: c.completionTokens };
          if (text !== '') onDelta(r.key, text);
        },
      },
      signal,
    );
    if (!usage) this.client.log.debug(`${this.modelId}: request ${r.key} was streamed without token counts; counting ${pieces} pieces as tokens`);
    // Streamed pieces already shown stay shown; the stored text ends before the stop string.
    const cut = cutAtStop(text, sampling.stop);
    if (cut !== undefined) {
      text = cut;
      finishReason = 'stop';
    }
    return {
      key: r.key,
      text,
      promptTokens: usage?.promptTokens ?? 0,
      completionTokens: usage?.completionTokens ?? pieces,
      finishReason,
      durationMs: Date.now() - started,
    };
  }
}
