import { EngineError, cancelled } from '../../errors';
import type { Logger } from '../../log';
import { type RetryPolicy, backoffMs, parseRetryAfter, sleep } from './retry';
import { SseDecoder } from './sse';
import { type RawResponse, Transport } from './transport';

/**
 * The one place the engine talks HTTP to model servers (generation and reward models): JSON POSTs
 * with a per-attempt timeout, bounded retries, cancellation, and an API key that is read from the
 * environment for each request, sent as a Bearer token, and never kept, logged or reported.
 * Requests go through a keep-alive connection pool (transport.ts) that `close()` shuts.
 */
export interface HttpClientSettings {
  /** Name of the environment variable that holds the API key (the key itself is never stored). */
  apiKeyEnv: string;
  /** The longest silence in one attempt: waiting for the answer, or between two pieces of a stream. */
  requestTimeoutMs: number;
  retry: RetryPolicy;
  logger: Logger;
  /** The model the requests name, for the "not found" hint. */
  model: string;
  /** What the requests are for, in CANCELLED messages: 'generation', 'reward-model scoring'. */
  activity: string;
  /** Connections kept per server: the client's concurrency. */
  maxConnections: number;
}

/** Thrown by response parsers: the server answered 200 with something that is not the expected shape. */
export class MalformedResponse extends Error {
  override readonly name = 'MalformedResponse';
}

type FailureKind = 'status' | 'network' | 'timeout' | 'malformed';

/** Why one attempt failed, and whether trying again can help. */
class AttemptFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    readonly retryable: boolean,
    readonly hint: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** Wraps what a caller's callback threw, so it is passed on as is rather than taken for a network error. */
class CallerError extends Error {
  constructor(readonly inner: unknown) {
    super('a stream callback threw');
  }
}

export interface StreamHandlers {
  /** Each streamed event's JSON. */
  event(json: unknown): void;
  /** The whole answer, when the server did not stream. */
  whole(json: unknown): void;
}

export class HttpJsonClient {
  /** Every message goes through `redact`, so a key a server echoes back never reaches a log. */
  readonly log: Logger;
  /** An ES private field, so that inspecting a client never reaches the pool's sockets and the headers they sent. */
  readonly #transport: Transport;

  constructor(private readonly settings: HttpClientSettings) {
    this.#transport = new Transport(settings.maxConnections);
    const clean = (write: (message: string) => void) => (message: string) => write(this.redact(message));
    const l = settings.logger;
    this.log = { debug: clean((m) => l.debug(m)), info: clean((m) => l.info(m)), warn: clean((m) => l.warn(m)), error: clean((m) => l.error(m)) };
  }

  /** POSTs `body` and returns `parse(the JSON answer)`, retrying what can be retried. */
  postJson<T>(url: string, body: unknown, parse: (json: unknown) => T, signal?: AbortSignal): Promise<T> {
    const payload = JSON.stringify(body);
    return this.withRetries(url, signal, () => true, () =>
      this.attempt(url, payload, 'application/json', signal, async (response) => parse(await readJson(response))),
    );
  }

  /**
   * POSTs a streaming request and hands each SSE `data` payload, parsed as JSON, to
   * `handlers.event`. Retried only until the first event has been handed over: a retry after that
   * would repeat text the caller has already shown. A server that ignores `stream: true` and
   * answers with one JSON body is accepted: that body goes to `handlers.whole`.
   */
  postStream(url: string, body: unknown, handlers: StreamHandlers, signal?: AbortSignal): Promise<void> {
    const payload = JSON.stringify(body);
    let delivered = 0;
    const call = (fn: () => void) => {
      try {
        fn();
      } catch (err) {
        throw err instanceof MalformedResponse || err instanceof EngineError ? err : new CallerError(err);
      }
    };
    return this.withRetries(url, signal, () => delivered === 0, () =>
      this.attempt(url, payload, 'text/event-stream', signal, async (response) => {
        const type = response.header('content-type') ?? '';
        if (!type.includes('text/event-stream')) {
          const json = await readJson(response);
          call(() => handlers.whole(json));
          return;
        }
        const decoder = new SseDecoder();
        const text = new TextDecoder();
        /** Returns true at [DONE]. */
        const deliver = (data: string): boolean => {
          if (data.trim() === '[DONE]') return true;
          let json: unknown;
          try {
            json = JSON.parse(data);
          } catch {
            throw malformed(`a stream event is not valid JSON (${snippet(data)})`);
          }
          call(() => handlers.event(json));
          delivered++;
          return false;
        };
        for await (const chunk of response.chunks()) {
          for (const data of decoder.push(text.decode(chunk, { stream: true }))) {
            if (deliver(data)) {
              // Whatever follows [DONE] (usually nothing) is read and dropped so the connection is reused.
              response.drain();
              return;
            }
          }
        }
        for (const data of decoder.end()) if (deliver(data)) return;
      }),
    );
  }

  /** Closes the pooled connections (and with them any request still in flight). */
  close(): void {
    this.#transport.close();
  }

  /** Removes the API key (and any Bearer token) from text that may reach a person or a log. */
  redact(text: string): string {
    const key = this.apiKey();
    const withoutKey = key === undefined ? text : text.split(key).join('[redacted]');
    return withoutKey.replace(/(Bearer\s+)[^\s"',;]+/gi, '$1[redacted]');
  }

  private apiKey(): string | undefined {
    const key = process.env[this.settings.apiKeyEnv];
    return key === undefined || key.trim() === '' ? undefined : key.trim();
  }

  private async withRetries<T>(
    url: string,
    signal: AbortSignal | undefined,
    canRetry: () => boolean,
    attempt: () => Promise<T>,
  ): Promise<T> {
    const { retry, activity } = this.settings;
    let malformedSeen = 0;
    for (let n = 1; ; n++) {
      if (signal?.aborted) throw cancelled(activity);
      try {
        return await attempt();
      } catch (err) {
        if (!(err instanceof AttemptFailure)) throw err;
        if (err.kind === 'malformed') malformedSeen++;
        // A malformed 200 is usually a proxy or the wrong endpoint: worth one more look, not five.
        const retryable = err.retryable && canRetry() && (err.kind !== 'malformed' || malformedSeen <= 1);
        if (!retryable || n >= retry.maxAttempts) throw this.fail(url, err, n);
        let wait = backoffMs(retry, n);
        if (err.retryAfterMs !== undefined) {
          if (err.retryAfterMs > retry.maxRetryWaitMs) {
            throw this.fail(url, err, n, `the server asked to wait ${seconds(err.retryAfterMs)}, more than the ${seconds(retry.maxRetryWaitMs)} limit (maxRetryWaitMs)`);
          }
          wait = err.retryAfterMs + Math.round(Math.random() * Math.min(250, retry.backoffBaseMs));
        }
        this.log.warn(`POST ${displayUrl(url)}: ${err.message}; attempt ${n} of ${retry.maxAttempts}, retrying in ${seconds(wait)}`);
        await sleep(wait, signal, activity);
      }
    }
  }

  /**
   * One request. It times out after `requestTimeoutMs` of silence (waiting for the answer, or
   * between two pieces of a stream); the caller's signal cancels it at once.
   */
  private async attempt<T>(
    url: string,
    payload: string,
    accept: string,
    signal: AbortSignal | undefined,
    read: (response: RawResponse) => Promise<T>,
  ): Promise<T> {
    const { activity, requestTimeoutMs } = this.settings;
    let timedOut = false;
    const started = Date.now();
    let response: RawResponse | undefined;
    let bodyRead = false;
    try {
      const headers: Record<string, string> = { 'content-type': 'application/json', accept };
      const key = this.apiKey();
      if (key !== undefined) headers.authorization = `Bearer ${key}`;
      response = await this.#transport.post(url, { headers, body: payload, signal, idleTimeoutMs: requestTimeoutMs, onTimeout: () => (timedOut = true) });
      if (response.status < 200 || response.status > 299) {
        const text = await response.text().catch(() => '');
        bodyRead = true;
        throw this.statusFailure(response, text, url);
      }
      const result = await read(response);
      bodyRead = true;
      this.log.debug(`POST ${displayUrl(url)}: ${response.status} in ${Date.now() - started} ms`);
      return result;
    } catch (err) {
      if (signal?.aborted) throw cancelled(activity);
      if (err instanceof AttemptFailure || err instanceof EngineError) throw err;
      if (err instanceof CallerError) throw err.inner;
      if (timedOut) {
        throw new AttemptFailure(
          'timeout',
          `no response within ${seconds(requestTimeoutMs)}`,
          true,
          'raise the request timeout, lower the max new tokens or the concurrency, or check that the server is not stuck',
        );
      }
      if (err instanceof MalformedResponse) throw new AttemptFailure('malformed', err.message, true, WRONG_ENDPOINT_HINT);
      throw this.networkFailure(url, err);
    } finally {
      // A body left unread (the parser or a callback threw) closes its connection; one read to the
      // end goes back to the pool.
      if (!bodyRead) response?.destroy();
    }
  }

  private statusFailure(response: RawResponse, body: string, url: string): AttemptFailure {
    const { status } = response;
    const said = serverMessage(body);
    const message = `HTTP ${status}${response.statusText ? ` ${response.statusText}` : ''}${said ? ` (the server said: ${said})` : ''}`;
    const retryable = status === 408 || status === 429 || status >= 500;
    const retryAfterMs = retryable ? parseRetryAfter(response.header('retry-after') ?? null) : undefined;
    return new AttemptFailure('status', message, retryable, this.statusHint(status, url), retryAfterMs);
  }

  private statusHint(status: number, url: string): string {
    const env = this.settings.apiKeyEnv;
    if (status === 401 || status === 403) {
      return this.apiKey() === undefined
        ? `the server wants an API key: set the environment variable ${env} (or configure another variable name)`
        : `check the API key in the environment variable ${env}: the server refused it`;
    }
    if (status === 404 && /\/completions$/.test(url) && !/\/chat\/completions$/.test(url)) {
      return `the server may have no /completions endpoint (transformers serve has only /chat/completions): use mode 'chat'; or check the base URL and the model name '${this.settings.model}'`;
    }
    if (status === 404) {
      return `check the base URL (vLLM, SGLang and llama.cpp serve the API under http://HOST:PORT/v1; Ollama under http://HOST:11434/v1) and the model name '${this.settings.model}' (GET <base URL>/models lists the served names)`;
    }
    if (status === 408) return 'the server gave up waiting; check its load or raise its timeout';
    if (status === 413) return 'the request is too large for the server; shorten the prompts';
    if (status === 429) return 'the server is rate-limiting; lower the concurrency or try again later';
    if (status >= 500) return 'the server failed; check its log, lower the concurrency, or try again later';
    return "the server refused the request; check the model's context length and the sampling settings (max new tokens, stop strings)";
  }

  private networkFailure(url: string, err: unknown): AttemptFailure {
    // node:http puts the system error (ECONNREFUSED, ECONNRESET, …) on the error itself.
    const code = err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
    const message = err instanceof Error ? err.message : String(err);
    const detail = code !== undefined ? `${code}: ${message}` : message;
    return new AttemptFailure('network', `the connection failed (${detail})`, true, `check that the server is running and reachable at ${displayUrl(new URL(url).origin)}`);
  }

  private fail(url: string, failure: AttemptFailure, attempts: number, extra?: string): EngineError {
    const tries = attempts > 1 ? ` after ${attempts} attempts` : '';
    const message = `POST ${displayUrl(url)}: ${failure.message}${tries}${extra ? `; ${extra}` : ''}`;
    return new EngineError('BACKEND', this.redact(message), this.redact(failure.hint));
  }
}

const WRONG_ENDPOINT_HINT =
  'check that the base URL points at the OpenAI-compatible API (it usually ends in /v1), not at a proxy or a web page, and that the server is the kind configured';

export function malformed(message: string): MalformedResponse {
  return new MalformedResponse(message);
}

async function readJson(response: RawResponse): Promise<unknown> {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    throw malformed(text.trim() === '' ? 'the response body is empty' : `the response is not valid JSON (it starts: ${snippet(text)})`);
  }
}

/** The error text of an OpenAI-style `{"error": {"message"}}`, vLLM's `{"message"}`, FastAPI's `{"detail"}`, or the raw body. */
function serverMessage(body: string): string {
  if (body.trim() === '') return '';
  try {
    const json: unknown = JSON.parse(body);
    if (typeof json === 'object' && json !== null) {
      const record = json as Record<string, unknown>;
      const error = record.error;
      if (typeof error === 'string') return snippet(error);
      if (typeof error === 'object' && error !== null && typeof (error as Record<string, unknown>).message === 'string') {
        return snippet((error as Record<string, unknown>).message as string);
      }
      if (typeof record.message === 'string') return snippet(record.message);
      if (typeof record.detail === 'string') return snippet(record.detail);
    }
  } catch {
    // not JSON: show the start of the body
  }
  return snippet(body);
}

function snippet(text: string, max = 200): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

function seconds(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)} s`;
}

/** The URL without user:password, in case someone put credentials there. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username === '' && u.password === '') return url;
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return url;
  }
}
