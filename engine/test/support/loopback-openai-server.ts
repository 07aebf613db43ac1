import { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A real HTTP server on 127.0.0.1 that speaks enough of the OpenAI-compatible API (and vLLM's
 * /classify and /pooling) for the engine's HTTP clients to be tested without mocking fetch.
 * Each test scripts what the next requests get: a queue of behaviours, or a function of the
 * request; anything unscripted gets the default answer below after `latencyMs`.
 *
 * Default answers (deterministic, so tests can compute what to expect):
 * - /v1/chat/completions: "echo: <last user message>", cut to max_tokens words (finish 'length').
 * - /v1/completions: "completion of: <prompt>", the same way.
 * - /classify, /pooling: one score per text, `loopbackLogit(text)`; a chat is scored as
 *   `role: content` blocks joined by blank lines.
 * Token counts are word counts. Streams send one word per event.
 */
export type Behaviour =
  | { kind: 'default'; delayMs?: number }
  | { kind: 'json'; status?: number; body: unknown; headers?: Record<string, string>; delayMs?: number }
  | { kind: 'text'; status?: number; text: string; contentType?: string; headers?: Record<string, string>; delayMs?: number }
  /** Destroys the socket without an answer (ECONNRESET / "other side closed" for the client). */
  | { kind: 'reset'; delayMs?: number }
  /** Never answers. */
  | { kind: 'hang' }
  /** A stream of these pieces; `breakAfter` destroys the socket after that many, `hangAfter` goes silent. */
  | { kind: 'sse'; pieces: string[]; intervalMs?: number; finishReason?: string; usage?: boolean; breakAfter?: number; hangAfter?: number };

export interface RecordedRequest {
  /** 0-based arrival order. */
  n: number;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** Parsed JSON, or the raw text when it is not JSON. */
  body: unknown;
  /** Date.now() when the body had arrived. */
  at: number;
}

export interface LoopbackServer {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** url + '/v1' */
  readonly baseUrl: string;
  readonly requests: RecordedRequest[];
  /** Requests being answered now, and the most at once since the last reset. */
  readonly inFlight: number;
  readonly maxInFlight: number;
  /** Requests whose client went away before the answer was complete. */
  readonly clientAborts: number;
  /** TCP connections opened by clients since the last reset (keep-alive clients reuse theirs). */
  readonly connections: number;
  /** Delay of default answers, ms. */
  latencyMs: number;
  /** When set, a request naming another model gets vLLM's 404. */
  model: string | undefined;
  /** Classes per text on /classify and /pooling (1: reward model; 2: logits [-x, x]). */
  classes: number;
  /** /pooling answers per-token rows ([[0.1],[0.2],[x]]) when true, one vector when false. */
  poolingPerToken: boolean;
  behave(fn: (req: RecordedRequest) => Behaviour | undefined): void;
  queue(...behaviours: Behaviour[]): void;
  reset(): void;
  /** Resolves when no request is in flight, or after `timeoutMs` (then false). */
  settled(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

/** The score the server gives a text: deterministic, spread over about [-2, 2]. */
export function loopbackLogit(text: string): number {
  let h = 0;
  for (const ch of text) h = (h * 31 + (ch.codePointAt(0) ?? 0)) % 1000;
  return h / 250 - 2;
}

export function chatAsText(messages: { role: string; content: string }[]): string {
  return messages.map((m) => `${m.role}: ${m.content}`).join('\n\n');
}

export async function startLoopbackServer(): Promise<LoopbackServer> {
  const requests: RecordedRequest[] = [];
  const queued: Behaviour[] = [];
  let decide: ((req: RecordedRequest) => Behaviour | undefined) | undefined;
  let inFlight = 0;
  let maxInFlight = 0;
  let clientAborts = 0;
  let connections = 0;
  const state: State = { latencyMs: 0, model: undefined, classes: 1, poolingPerToken: true };

  const server = createServer((req, res) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      inFlight--;
    };
    res.on('finish', finish);
    res.on('close', () => {
      if (!res.writableFinished) clientAborts++;
      finish();
    });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown = raw;
      try {
        body = JSON.parse(raw);
      } catch {
        // keep the text
      }
      const recorded: RecordedRequest = { n: requests.length, method: req.method ?? '', path: (req.url ?? '').split('?')[0], headers: req.headers, body, at: Date.now() };
      requests.push(recorded);
      const behaviour = queued.shift() ?? decide?.(recorded) ?? { kind: 'default' };
      void respond(state, recorded, behaviour, req, res);
    });
  });

  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;

  return {
    url,
    baseUrl: `${url}/v1`,
    requests,
    get inFlight() {
      return inFlight;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    get clientAborts() {
      return clientAborts;
    },
    get connections() {
      return connections;
    },
    get latencyMs() {
      return state.latencyMs;
    },
    set latencyMs(v: number) {
      state.latencyMs = v;
    },
    get model() {
      return state.model;
    },
    set model(v: string | undefined) {
      state.model = v;
    },
    get classes() {
      return state.classes;
    },
    set classes(v: number) {
      state.classes = v;
    },
    get poolingPerToken() {
      return state.poolingPerToken;
    },
    set poolingPerToken(v: boolean) {
      state.poolingPerToken = v;
    },
    behave(fn) {
      decide = fn;
    },
    queue(...behaviours) {
      queued.push(...behaviours);
    },
    reset() {
      requests.length = 0;
      queued.length = 0;
      decide = undefined;
      maxInFlight = inFlight;
      clientAborts = 0;
      connections = 0;
      Object.assign(state, { latencyMs: 0, model: undefined, classes: 1, poolingPerToken: true });
    },
    async settled(timeoutMs) {
      const until = Date.now() + timeoutMs;
      while (inFlight > 0 && Date.now() < until) await wait(10);
      return inFlight === 0;
    },
    close() {
      return new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}

type State = { latencyMs: number; model: string | undefined; classes: number; poolingPerToken: boolean };

function wait(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits unless the client goes away first; false when it did. */
function delay(ms: number, res: ServerResponse): Promise<boolean> {
  if (ms <= 0) return Promise.resolve(!res.destroyed);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      res.off('close', gone);
      resolve(!res.destroyed);
    }, ms);
    const gone = () => {
      clearTimeout(timer);
      resolve(false);
    };
    res.once('close', gone);
  });
}

async function respond(state: State, r: RecordedRequest, b: Behaviour, req: IncomingMessage, res: ServerResponse): Promise<void> {
  switch (b.kind) {
    case 'hang':
      return;
    case 'reset':
      if (await delay(b.delayMs ?? 0, res)) req.socket.destroy();
      return;
    case 'json':
      if (!(await delay(b.delayMs ?? 0, res))) return;
      res.writeHead(b.status ?? 200, { 'content-type': 'application/json', ...b.headers });
      res.end(JSON.stringify(b.body));
      return;
    case 'text':
      if (!(await delay(b.delayMs ?? 0, res))) return;
      res.writeHead(b.status ?? 200, { 'content-type': b.contentType ?? 'text/plain', ...b.headers });
      res.end(b.text);
      return;
    case 'sse':
      await stream(r, b.pieces, b, req, res);
      return;
    case 'default':
      if (!(await delay(b.delayMs ?? state.latencyMs, res))) return;
      answer(state, r, req, res);
  }
}

function answer(state: State, r: RecordedRequest, req: IncomingMessage, res: ServerResponse): void {
  const body = (typeof r.body === 'object' && r.body !== null ? r.body : {}) as Record<string, unknown>;
  const sendJson = (status: number, value: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(value));
  };
  if (state.model !== undefined && body.model !== state.model) {
    sendJson(404, { object: 'error', message: `The model \`${String(body.model)}\` does not exist.`, type: 'NotFoundError', code: 404 });
    return;
  }
  if (r.path === '/v1/chat/completions' || r.path === '/v1/completions') {
    const chat = r.path === '/v1/chat/completions';
    const messages = Array.isArray(body.messages) ? (body.messages as { role: string; content: string }[]) : [];
    const promptText = chat ? chatAsText(messages) : String(body.prompt ?? '');
    const lastUser = [...messages].reverse().find((m) => m.role === 'user')?.content ?? '';
    const full = chat ? `echo: ${lastUser}` : `completion of: ${promptText}`;
    const words = full.split(' ');
    const max = typeof body.max_tokens === 'number' ? body.max_tokens : words.length;
    const kept = words.slice(0, max);
    const finishReason = kept.length < words.length ? 'length' : 'stop';
    if (body.stream === true) {
      const pieces = kept.map((w, i) => (i === 0 ? w : ` ${w}`));
      const options = body.stream_options as { include_usage?: boolean } | undefined;
      void stream(r, pieces, { finishReason, usage: options?.include_usage === true }, req, res);
      return;
    }
    const usage = { prompt_tokens: countWords(promptText), completion_tokens: kept.length, total_tokens: countWords(promptText) + kept.length };
    const text = kept.join(' ');
    const choice = chat ? { index: 0, message: { role: 'assistant', content: text }, finish_reason: finishReason } : { index: 0, text, finish_reason: finishReason };
    sendJson(200, { id: `cmpl-${r.n}`, object: chat ? 'chat.completion' : 'text_completion', created: 0, model: body.model, choices: [choice], usage });
    return;
  }
  if (r.path === '/classify' || r.path === '/pooling') {
    const texts = Array.isArray(body.messages)
      ? [chatAsText(body.messages as { role: string; content: string }[])]
      : Array.isArray(body.input)
        ? (body.input as string[])
        : [String(body.input ?? '')];
    const raw = body.use_activation === false;
    const data = texts.map((text, index) => {
      const x = loopbackLogit(text);
      const logits = state.classes === 1 ? [x] : [-x, x];
      const values = raw ? logits : activate(logits);
      if (r.path === '/classify') return { index, label: state.classes === 1 ? 'LABEL_0' : values[1] > values[0] ? 'LABEL_1' : 'LABEL_0', probs: values, num_classes: values.length };
      const pooled = state.poolingPerToken ? [values.map(() => 0.1), values.map(() => 0.2), values] : values;
      return { index, object: 'pooling', data: pooled };
    });
    const tokens = texts.reduce((n, t) => n + countWords(t), 0);
    sendJson(200, { id: `${r.path.slice(1)}-${r.n}`, object: 'list', created: 0, model: body.model, data, usage: { prompt_tokens: tokens, total_tokens: tokens, completion_tokens: 0 } });
    return;
  }
  sendJson(404, { detail: 'Not Found' });
}

function activate(logits: number[]): number[] {
  if (logits.length === 1) return [1 / (1 + Math.exp(-logits[0]))];
  const m = Math.max(...logits);
  const e = logits.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

function countWords(text: string): number {
  return text.split(/\s+/).filter((w) => w !== '').length;
}

async function stream(
  r: RecordedRequest,
  pieces: string[],
  o: { intervalMs?: number; finishReason?: string; usage?: boolean; breakAfter?: number; hangAfter?: number },
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const chat = r.path === '/v1/chat/completions';
  // Resolves once written, so a socket destroyed next does not swallow what came before.
  const event = (value: unknown) => new Promise<void>((resolve) => res.write(`data: ${JSON.stringify(value)}\n\n`, () => resolve()));
  const chunk = (piece: string, finish: string | null) =>
    chat
      ? { id: `chunk-${r.n}`, object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: piece }, finish_reason: finish }] }
      : { id: `chunk-${r.n}`, object: 'text_completion', choices: [{ index: 0, text: piece, finish_reason: finish }] };
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  if (chat) await event({ id: `chunk-${r.n}`, object: 'chat.completion.chunk', choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] });
  for (let i = 0; i < pieces.length; i++) {
    if (i === o.breakAfter) {
      req.socket.destroy();
      return;
    }
    if (i === o.hangAfter) return;
    if (!(await delay(o.intervalMs ?? 0, res))) return;
    await event(chunk(pieces[i], null));
  }
  await event(chunk('', o.finishReason ?? 'stop'));
  if (o.usage) await event({ id: `chunk-${r.n}`, choices: [], usage: { prompt_tokens: 3, completion_tokens: pieces.length, total_tokens: 3 + pieces.length } });
  res.write('data: [DONE]\n\n');
  res.end();
}
