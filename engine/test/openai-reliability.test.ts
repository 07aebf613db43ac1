import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, afterEach, before, describe, test } from 'node:test';
import { EngineError } from '../src/errors';
import { GREEDY, type GenerationRequest } from '../src/generation/backend';
import { OpenAIBackend, type OpenAIBackendOptions } from '../src/generation/openai/backend';
import type { Logger } from '../src/log';
import { type LoopbackServer, startLoopbackServer } from './support/loopback-openai-server';

// Every way a server can fail, against a real loopback server: what is retried (429, 5xx,
// resets, timeouts, one malformed answer), what is not (other 4xx, a broken stream), Retry-After,
// cancellation, and that nothing waits without a bound.

let server: LoopbackServer;
before(async () => {
  server = await startLoopbackServer();
});
after(() => server.close());
afterEach(() => server.reset());

const KEY_ENV = 'ARIES_TEST_RELIABILITY_KEY';
/** Fast retries so failures take milliseconds; tests that need real waits say so. */
const FAST = { maxAttempts: 3, backoffBaseMs: 5, backoffMaxMs: 20, maxRetryWaitMs: 5000 };

function backend(options: Partial<OpenAIBackendOptions> = {}): OpenAIBackend {
  return new OpenAIBackend({ baseUrl: server.baseUrl, model: 'tiny', apiKeyEnv: KEY_ENV, requestTimeoutMs: 5000, retry: FAST, ...options });
}

function req(key: string, prompt = 'q'): GenerationRequest {
  return { key, prompt, sampling: GREEDY };
}

function capture(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const push = (level: string) => (m: string) => lines.push(`${level} ${m}`);
  return { lines, debug: push('debug'), info: push('info'), warn: push('warn'), error: push('error') };
}

/** Asserts an EngineError with this code, and hands it over for more checks. */
async function rejectsWith(p: Promise<unknown>, code: string): Promise<EngineError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof EngineError, `expected an EngineError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}, but it resolved`);
}

function gap(a: number, b: number): number {
  return server.requests[b].at - server.requests[a].at;
}

describe('retried failures', () => {
  test('429 with Retry-After in seconds waits at least that long, then succeeds', async () => {
    server.queue({ kind: 'json', status: 429, body: { error: { message: 'slow down' } }, headers: { 'retry-after': '1' } });
    const log = capture();
    const [r] = await backend({ logger: log }).generate([req('a')]);
    assert.equal(r.text, 'echo: q');
    assert.equal(server.requests.length, 2);
    assert.ok(gap(0, 1) >= 950, `retried after ${gap(0, 1)} ms, Retry-After was 1 s`);
    assert.ok(log.lines.some((l) => /^warn .*HTTP 429.*slow down.*attempt 1 of 3, retrying in 1/.test(l)), log.lines.join('\n'));
  });

  test('503 with Retry-After as an HTTP date is honoured', async () => {
    const at = new Date(Date.now() + 2000).toUTCString();
    server.queue({ kind: 'json', status: 503, body: {}, headers: { 'retry-after': at } });
    await backend().generate([req('a')]);
    assert.equal(server.requests.length, 2);
    // HTTP dates have one-second resolution: the wait is between 1 and 2 s.
    assert.ok(gap(0, 1) >= 900, `retried after ${gap(0, 1)} ms, Retry-After was ${at}`);
  });

  test('a Retry-After longer than maxRetryWaitMs fails at once instead of waiting', async () => {
    server.queue({ kind: 'json', status: 429, body: {}, headers: { 'retry-after': '3600' } });
    const started = Date.now();
    const err = await rejectsWith(backend({ retry: { ...FAST, maxRetryWaitMs: 1000 } }).generate([req('a')]), 'BACKEND');
    assert.ok(Date.now() - started < 1000);
    assert.match(err.message, /asked to wait 3600 s, more than the 1 s limit \(maxRetryWaitMs\)/);
    assert.equal(server.requests.length, 1);
  });

  test('500 twice then success: three requests, one result', async () => {
    server.queue({ kind: 'json', status: 500, body: { message: 'boom' } }, { kind: 'text', status: 502, text: 'bad gateway' });
    const [r] = await backend().generate([req('a')]);
    assert.equal(r.text, 'echo: q');
    assert.equal(server.requests.length, 3);
  });

  test('5xx every time: BACKEND after maxAttempts, naming the URL, the status and what to do', async () => {
    server.behave(() => ({ kind: 'json', status: 500, body: { object: 'error', message: 'CUDA out of memory' } }));
    const err = await rejectsWith(backend().generate([req('a')]), 'BACKEND');
    assert.equal(server.requests.length, 3);
    assert.match(err.message, new RegExp(`POST ${server.baseUrl}/chat/completions: HTTP 500`));
    assert.match(err.message, /CUDA out of memory/);
    assert.match(err.message, /after 3 attempts/);
    assert.match(err.hint ?? '', /check its log/);
  });

  test('a connection reset is retried', async () => {
    server.queue({ kind: 'reset' });
    const [r] = await backend().generate([req('a')]);
    assert.equal(r.text, 'echo: q');
    assert.equal(server.requests.length, 2);
  });

  test('a server that never answers times out per attempt and fails within a bounded time', async () => {
    server.behave(() => ({ kind: 'hang' }));
    const started = Date.now();
    const err = await rejectsWith(backend({ requestTimeoutMs: 150, retry: { ...FAST, maxAttempts: 2 } }).generate([req('a')]), 'BACKEND');
    const took = Date.now() - started;
    assert.equal(server.requests.length, 2);
    assert.match(err.message, /no response within 150 ms after 2 attempts/);
    assert.match(err.hint ?? '', /raise the request timeout/);
    assert.ok(took >= 300 && took < 3000, `took ${took} ms`);
  });

  test('a timeout followed by an answer succeeds', async () => {
    server.queue({ kind: 'hang' });
    const [r] = await backend({ requestTimeoutMs: 150 }).generate([req('a')]);
    assert.equal(r.text, 'echo: q');
  });

  test('a refused connection is retried, then reported with what to check', async () => {
    const port = await freePort();
    const b = new OpenAIBackend({ baseUrl: `http://127.0.0.1:${port}/v1`, model: 'm', retry: FAST });
    const err = await rejectsWith(b.generate([req('a')]), 'BACKEND');
    assert.match(err.message, /the connection failed \(ECONNREFUSED/);
    assert.match(err.message, /after 3 attempts/);
    assert.match(err.hint ?? '', new RegExp(`server is running and reachable at http://127.0.0.1:${port}`));
  });
});

describe('malformed answers: retried once at most', () => {
  test('invalid JSON twice: BACKEND after 2 requests even with more attempts allowed', async () => {
    server.behave(() => ({ kind: 'text', text: '<html>proxy login</html>', contentType: 'text/html' }));
    const err = await rejectsWith(backend({ retry: { ...FAST, maxAttempts: 5 } }).generate([req('a')]), 'BACKEND');
    assert.equal(server.requests.length, 2);
    assert.match(err.message, /not valid JSON \(it starts: <html>proxy login/);
    assert.match(err.hint ?? '', /ends in \/v1/);
  });

  test('invalid JSON once, then a good answer, succeeds', async () => {
    server.queue({ kind: 'text', text: '{"choices": [' });
    const [r] = await backend().generate([req('a')]);
    assert.equal(r.text, 'echo: q');
  });

  test('JSON without choices is reported as such', async () => {
    server.behave(() => ({ kind: 'json', body: { data: [] } }));
    const err = await rejectsWith(backend().generate([req('a')]), 'BACKEND');
    assert.equal(server.requests.length, 2);
    assert.match(err.message, /has no "choices" \(keys: data\)/);
  });

  test('a 200 carrying an error object says what the server said', async () => {
    server.behave(() => ({ kind: 'json', body: { error: { message: 'upstream timeout' } } }));
    const err = await rejectsWith(backend().generate([req('a')]), 'BACKEND');
    assert.match(err.message, /upstream timeout/);
  });

  test('a chat answer on a completions endpoint (no text field) is malformed, not an empty answer', async () => {
    server.behave(() => ({ kind: 'json', body: { choices: [{ message: { content: 'x' } }] } }));
    const err = await rejectsWith(backend({ mode: 'completions' }).generate([req('a')]), 'BACKEND');
    assert.match(err.message, /choices\[0\] has no "text"/);
  });
});

describe('not retried', () => {
  test('401 without a key: one request, hint names the environment variable to set', async () => {
    delete process.env[KEY_ENV];
    server.behave(() => ({ kind: 'json', status: 401, body: { error: { message: 'Unauthorized' } } }));
    const err = await rejectsWith(backend().generate([req('a')]), 'BACKEND');
    assert.equal(server.requests.length, 1);
    assert.match(err.message, /HTTP 401/);
    assert.match(err.hint ?? '', new RegExp(`set the environment variable ${KEY_ENV}`));
  });

  test('401 with a key: hint says to check the key in that variable', async () => {
    process.env[KEY_ENV] = 'sk-wrong';
    try {
      server.behave(() => ({ kind: 'json', status: 401, body: {} }));
      const err = await rejectsWith(backend().generate([req('a')]), 'BACKEND');
      assert.match(err.hint ?? '', new RegExp(`check the API key in the environment variable ${KEY_ENV}`));
    } finally {
      delete process.env[KEY_ENV];
    }
  });

  test('404 for an unknown model: one request, hint points at the base URL and model name', async () => {
    server.model = 'served-model';
    const err = await rejectsWith(backend({ model: 'typo-model' }).generate([req('a')]), 'BACKEND');
    assert.equal(server.requests.length, 1);
    assert.match(err.message, /HTTP 404.*The model `typo-model` does not exist/);
    assert.match(err.hint ?? '', /check the base URL .* and the model name 'typo-model'/);
  });

  test("400 passes on the server's reason", async () => {
    server.behave(() => ({ kind: 'json', status: 400, body: { object: 'error', message: "This model's maximum context length is 2048 tokens" } }));
    const err = await rejectsWith(backend().generate([req('a')]), 'BACKEND');
    assert.equal(server.requests.length, 1);
    assert.match(err.message, /maximum context length is 2048/);
    assert.match(err.hint ?? '', /context length/);
  });

  test('a fatal error stops the batch without waiting for slow requests', async () => {
    server.behave((r) => (JSON.stringify(r.body).includes('bad') ? { kind: 'json', status: 401, body: {} } : { kind: 'default', delayMs: 3000 }));
    const started = Date.now();
    await rejectsWith(backend({ maxConcurrency: 2 }).generate([req('slow1', 'slow'), req('x', 'bad'), req('slow2', 'slow'), req('slow3', 'slow')]), 'BACKEND');
    assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
    assert.ok(await server.settled(1000), 'the slow request should have been aborted');
    assert.equal(server.requests.length, 2, 'queued requests must not start');
  });
});

describe('streams', () => {
  test('a stream broken after text was shown is reported, not retried (it would repeat text)', async () => {
    server.queue({ kind: 'sse', pieces: ['one', ' two', ' three'], breakAfter: 2 });
    const deltas: string[] = [];
    const err = await rejectsWith(backend().generate([req('s')], { onDelta: (_k, d) => deltas.push(d) }), 'BACKEND');
    assert.equal(server.requests.length, 1);
    assert.deepEqual(deltas, ['one', ' two']);
    assert.match(err.message, /connection failed/);
  });

  test('a stream that goes silent hits the idle timeout', async () => {
    server.queue({ kind: 'sse', pieces: ['a', 'b', 'c'], hangAfter: 1 });
    const started = Date.now();
    const err = await rejectsWith(backend({ requestTimeoutMs: 200 }).generate([req('s')], { onDelta: () => undefined }), 'BACKEND');
    assert.match(err.message, /no response within 200 ms/);
    assert.ok(Date.now() - started < 2000);
  });

  test('a stream that fails before its first event is retried', async () => {
    server.queue({ kind: 'json', status: 503, body: {} });
    const deltas: string[] = [];
    const [r] = await backend().generate([req('s', 'hello')], { onDelta: (_k, d) => deltas.push(d) });
    assert.equal(r.text, 'echo: hello');
    assert.equal(deltas.join(''), 'echo: hello');
  });

  test('a slow but steady stream longer than the timeout is fine (the timeout is per silence)', async () => {
    server.queue({ kind: 'sse', pieces: ['a', 'b', 'c', 'd', 'e'], intervalMs: 80 });
    const [r] = await backend({ requestTimeoutMs: 250 }).generate([req('s')], { onDelta: () => undefined });
    assert.equal(r.text, 'abcde');
  });
});

describe('cancellation', () => {
  test('aborting stops in-flight requests at once and never starts queued ones', async () => {
    server.latencyMs = 5000;
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(), 150);
    const err = await rejectsWith(
      backend({ maxConcurrency: 2 }).generate(Array.from({ length: 6 }, (_, i) => req(`r${i}`)), { signal: controller.signal }),
      'CANCELLED',
    );
    const took = Date.now() - started;
    assert.ok(took < 1000, `took ${took} ms`);
    assert.match(err.message, /generation was cancelled/);
    assert.ok(await server.settled(1000), 'server still has requests in flight');
    assert.equal(server.requests.length, 2);
    assert.equal(server.clientAborts, 2);
  });

  test('aborting during a retry wait cancels the wait', async () => {
    server.queue({ kind: 'json', status: 429, body: {}, headers: { 'retry-after': '4' } });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 150);
    const started = Date.now();
    await rejectsWith(backend().generate([req('a')], { signal: controller.signal }), 'CANCELLED');
    assert.ok(Date.now() - started < 1000);
    assert.equal(server.requests.length, 1);
  });

  test('an already aborted signal sends nothing', async () => {
    await rejectsWith(backend().generate([req('a')], { signal: AbortSignal.abort() }), 'CANCELLED');
    assert.equal(server.requests.length, 0);
  });

  test('aborting a stream stops it', async () => {
    server.queue({ kind: 'sse', pieces: ['a', 'b', 'c', 'd'], intervalMs: 1000 });
    const controller = new AbortController();
    const deltas: string[] = [];
    const started = Date.now();
    await rejectsWith(
      backend().generate([req('s')], {
        signal: controller.signal,
        onDelta: (_k, d) => {
          deltas.push(d);
          controller.abort();
        },
      }),
      'CANCELLED',
    );
    assert.ok(Date.now() - started < 2000);
    assert.deepEqual(deltas, ['a']);
    assert.ok(await server.settled(1000));
  });

  test('close() aborts what is in flight; the backend then refuses work', async () => {
    server.latencyMs = 5000;
    const b = backend();
    const pending = b.generate([req('a')]);
    setTimeout(() => void b.close(), 100);
    await rejectsWith(pending, 'CANCELLED');
    await rejectsWith(b.generate([req('b')]), 'INTERNAL');
    assert.ok(await server.settled(1000));
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
