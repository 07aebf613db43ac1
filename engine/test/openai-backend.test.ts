import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { EngineError } from '../src/errors';
import { GREEDY, type GenerationRequest, type GenerationResult, type SamplingParams } from '../src/generation/backend';
import { OpenAIBackend, type OpenAIBackendOptions } from '../src/generation/openai/backend';
import { type LoopbackServer, startLoopbackServer } from './support/loopback-openai-server';

// Happy paths of the OpenAI-compatible backend against a real loopback server: request bodies,
// both API modes, streaming, and bounded concurrency.

let server: LoopbackServer;
before(async () => {
  server = await startLoopbackServer();
});
after(() => server.close());
afterEach(() => server.reset());

const KEY_ENV = 'ARIES_TEST_OPENAI_BACKEND_KEY';

function backend(options: Partial<OpenAIBackendOptions> = {}): OpenAIBackend {
  return new OpenAIBackend({ baseUrl: server.baseUrl, model: 'tiny', apiKeyEnv: KEY_ENV, requestTimeoutMs: 5000, ...options });
}

function req(key: string, prompt: GenerationRequest['prompt'], sampling: Partial<SamplingParams> = {}): GenerationRequest {
  return { key, prompt, sampling: { ...GREEDY, ...sampling } };
}

function bodyOf(n: number): Record<string, unknown> {
  return server.requests[n].body as Record<string, unknown>;
}

describe('chat mode', () => {
  test('answers each request, in request order, with token counts and finish reason', async () => {
    const b = backend();
    const results = await b.generate([req('a', 'What is 2+2?'), req('b', [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi there' }])]);
    assert.deepEqual(
      results.map((r) => [r.key, r.text, r.finishReason, r.completionTokens]),
      [
        ['a', 'echo: What is 2+2?', 'stop', 4],
        ['b', 'echo: Hi there', 'stop', 3],
      ],
    );
    assert.ok(results.every((r) => r.promptTokens > 0 && r.durationMs >= 0));
    assert.equal(b.kind, 'openai');
    assert.equal(b.modelId, `tiny @ ${server.baseUrl}`);
  });

  test('sends model, messages and every sampling field the servers read', async () => {
    await backend().generate([req('a', 'Q', { temperature: 0.7, topP: 0.9, topK: 40, maxNewTokens: 32, stop: ['\n\n', 'END'], seed: 1234 })]);
    assert.equal(server.requests[0].path, '/v1/chat/completions');
    assert.deepEqual(bodyOf(0), {
      model: 'tiny',
      messages: [{ role: 'user', content: 'Q' }],
      temperature: 0.7,
      top_p: 0.9,
      top_k: 40,
      max_tokens: 32,
      seed: 1234,
      stop: ['\n\n', 'END'],
      stream: false,
    });
  });

  test('leaves top_k and stop out when off', async () => {
    await backend().generate([req('a', 'Q')]);
    const body = bodyOf(0);
    assert.equal('top_k' in body, false);
    assert.equal('stop' in body, false);
    assert.equal(body.temperature, 0);
  });

  test("maps finish_reason 'length' when max_tokens cuts the answer", async () => {
    const [r] = await backend().generate([req('a', 'one two three four five', { maxNewTokens: 2 })]);
    assert.equal(r.text, 'echo: one');
    assert.equal(r.finishReason, 'length');
  });

  test('extraBody adds fields but cannot replace the model or the sampling', async () => {
    await backend({ extraBody: { repetition_penalty: 1.1, model: 'other', max_tokens: 1 } }).generate([req('a', 'Q', { maxNewTokens: 9 })]);
    const body = bodyOf(0);
    assert.equal(body.repetition_penalty, 1.1);
    assert.equal(body.model, 'tiny');
    assert.equal(body.max_tokens, 9);
  });

  test('sends the API key from the named environment variable as a Bearer token, and none when unset', async () => {
    process.env[KEY_ENV] = 'sk-local-test';
    try {
      await backend().generate([req('a', 'Q')]);
    } finally {
      delete process.env[KEY_ENV];
    }
    await backend().generate([req('b', 'Q')]);
    assert.equal(server.requests[0].headers.authorization, 'Bearer sk-local-test');
    assert.equal(server.requests[1].headers.authorization, undefined);
  });
});

describe('completions mode', () => {
  test('posts the prompt text to /completions and reads choices[0].text', async () => {
    const [r] = await backend({ mode: 'completions' }).generate([req('a', 'x = 1', { seed: 7 })]);
    assert.equal(server.requests[0].path, '/v1/completions');
    assert.equal(bodyOf(0).prompt, 'x = 1');
    assert.equal(bodyOf(0).seed, 7);
    assert.equal('messages' in bodyOf(0), false);
    assert.equal(r.text, 'completion of: x = 1');
    assert.equal(r.promptTokens, 3);
  });

  test('refuses a chat prompt with BAD_INPUT before sending anything', async () => {
    const b = backend({ mode: 'completions' });
    await assert.rejects(b.generate([req('ok', 'text'), req('q7', [{ role: 'user', content: 'hi' }])]), (err: EngineError) => {
      assert.equal(err.code, 'BAD_INPUT');
      assert.match(err.message, /request q7 is a chat/);
      assert.match(err.message, /mode 'chat'/);
      return true;
    });
    assert.equal(server.requests.length, 0);
  });
});

describe('streaming', () => {
  test('onDelta gets the text piece by piece; usage comes from the last event', async () => {
    const deltas: string[] = [];
    const results: GenerationResult[] = [];
    const [r] = await backend().generate([req('s', 'alpha beta gamma')], {
      onDelta: (key, d) => deltas.push(`${key}:${d}`),
      onResult: (x) => results.push(x),
    });
    assert.equal(r.text, 'echo: alpha beta gamma');
    assert.deepEqual(deltas, ['s:echo:', 's: alpha', 's: beta', 's: gamma']);
    assert.equal(r.completionTokens, 4);
    assert.equal(r.promptTokens, 3);
    assert.equal(r.finishReason, 'stop');
    assert.deepEqual(results, [r]);
    assert.equal(bodyOf(0).stream, true);
    assert.deepEqual(bodyOf(0).stream_options, { include_usage: true });
  });

  test('completions mode streams choices[0].text and maps length', async () => {
    const deltas: string[] = [];
    const [r] = await backend({ mode: 'completions' }).generate([req('s', 'p q', { maxNewTokens: 3 })], { onDelta: (_k, d) => deltas.push(d) });
    assert.equal(r.text, 'completion of: p');
    assert.equal(deltas.join(''), r.text);
    assert.equal(r.finishReason, 'length');
  });

  test('without usage in the stream, counts the pieces', async () => {
    server.queue({ kind: 'sse', pieces: ['a', 'b', 'c'], usage: false });
    const [r] = await backend().generate([req('s', 'x')], { onDelta: () => undefined });
    assert.equal(r.text, 'abc');
    assert.equal(r.completionTokens, 3);
    assert.equal(r.promptTokens, 0);
  });

  test('a server that ignores stream:true and answers JSON still gives one delta', async () => {
    server.queue({ kind: 'json', body: { choices: [{ index: 0, message: { role: 'assistant', content: 'whole answer' }, finish_reason: 'length' }], usage: { prompt_tokens: 2, completion_tokens: 2 } } });
    const deltas: string[] = [];
    const [r] = await backend().generate([req('s', 'x')], { onDelta: (_k, d) => deltas.push(d) });
    assert.deepEqual(deltas, ['whole answer']);
    assert.equal(r.finishReason, 'length');
    assert.equal(r.completionTokens, 2);
  });
});

describe('concurrency', () => {
  test('never exceeds maxConcurrency and gets close to C/L throughput', async () => {
    const C = 4;
    const L = 100;
    const N = 24;
    server.latencyMs = L;
    const b = backend({ maxConcurrency: C });
    // The first requests pay for loading fetch and opening connections; measure the steady state.
    await b.generate(Array.from({ length: C }, (_, i) => req(`warm${i}`, 'warm')));
    const started = Date.now();
    const results = await b.generate(Array.from({ length: N }, (_, i) => req(`r${i}`, `q${i}`)));
    const elapsed = Date.now() - started;
    const ideal = (N / C) * L;
    const ratio = ideal / elapsed;
    // Reported, not asserted tightly: timings on shared machines vary.
    console.log(`# concurrency: N=${N} C=${C} L=${L}ms elapsed=${elapsed}ms ideal=${ideal}ms throughput/(C/L)=${ratio.toFixed(2)} maxInFlight=${server.maxInFlight}`);
    assert.equal(results.length, N);
    assert.deepEqual(results.map((r) => r.key), Array.from({ length: N }, (_, i) => `r${i}`));
    assert.ok(server.maxInFlight <= C, `maxInFlight ${server.maxInFlight} > ${C}`);
    assert.ok(server.maxInFlight >= 2, 'requests should overlap');
    assert.ok(ratio > 0.3, `throughput ratio ${ratio.toFixed(2)} is far below C/L`);
  });

  test('loadFirst: the first request goes alone (a server loads the model once), the rest concurrently; later calls are not held back', async () => {
    server.reset();
    server.latencyMs = 60;
    const b = backend({ maxConcurrency: 4, loadFirst: true });
    const seen: number[] = [];
    server.behave(() => {
      seen.push(server.inFlight);
      return undefined;
    });
    await b.generate(Array.from({ length: 9 }, (_, i) => req(`l${i}`, `q${i}`)));
    assert.equal(seen[0], 1, 'the first request was alone on the server');
    assert.equal(seen[1], 1, 'the second started after the first answered');
    assert.ok(Math.max(...seen) >= 2, `the others overlapped: ${JSON.stringify(seen)}`);
    seen.length = 0;
    await b.generate(Array.from({ length: 4 }, (_, i) => req(`m${i}`, `q${i}`)));
    assert.ok(Math.max(...seen) >= 2, `a second call starts concurrently at once: ${JSON.stringify(seen)}`);
    server.behave(() => undefined);
  });

  test('requests share a pool of at most maxConcurrency keep-alive connections, streamed or not', async () => {
    const C = 3;
    server.latencyMs = 5;
    const b = backend({ maxConcurrency: C });
    const batch = (tag: string) => Array.from({ length: 30 }, (_, i) => req(`${tag}${i}`, `q${i}`));
    const plain = await b.generate(batch('p'));
    const deltas: string[] = [];
    const streamed = await b.generate(batch('s'), { onDelta: (_key, delta) => deltas.push(delta) });
    assert.equal(plain.length + streamed.length, 60);
    assert.ok(deltas.length >= 30);
    assert.equal(server.requests.length, 60);
    assert.ok(server.connections <= C, `${server.connections} connections for 60 requests at concurrency ${C}`);
    await b.close();
  });

  test('onResult fires as each response arrives, not when the batch ends', async () => {
    server.behave((r) => ({ kind: 'default', delayMs: JSON.stringify(r.body).includes('slow') ? 600 : 10 }));
    const seen: { key: string; at: number }[] = [];
    const started = Date.now();
    await backend({ maxConcurrency: 2 }).generate([req('slow', 'slow'), req('fast', 'fast')], { onResult: (r) => seen.push({ key: r.key, at: Date.now() - started }) });
    assert.deepEqual(seen.map((s) => s.key), ['fast', 'slow']);
    assert.ok(seen[0].at < seen[1].at - 200, `fast at ${seen[0].at} ms, slow at ${seen[1].at} ms`);
  });

  test('an empty batch sends nothing', async () => {
    assert.deepEqual(await backend().generate([]), []);
    assert.equal(server.requests.length, 0);
  });
});

describe('settings', () => {
  const bad: [string, Partial<OpenAIBackendOptions>, RegExp][] = [
    ['a base URL that is not a URL', { baseUrl: 'localhost:8000' }, /not a URL|not http/],
    ['a base URL that names an endpoint', { baseUrl: 'http://127.0.0.1:8000/v1/chat/completions' }, /names an endpoint/],
    ['an empty model', { model: ' ' }, /model name is empty/],
    ['maxConcurrency 0', { maxConcurrency: 0 }, /maxConcurrency/],
    ['an unknown mode', { mode: 'edits' as never }, /mode must be/],
    ['a key where the variable name belongs', { apiKeyEnv: 'sk-abc-123' }, /not an environment variable name/],
    ['a zero timeout', { requestTimeoutMs: 0 }, /requestTimeoutMs/],
    ['zero attempts', { retry: { maxAttempts: 0 } }, /maxAttempts/],
  ];
  for (const [what, options, message] of bad) {
    test(`refuses ${what} with BAD_INPUT`, () => {
      assert.throws(
        () => backend(options),
        (err: EngineError) => err instanceof EngineError && err.code === 'BAD_INPUT' && message.test(err.message),
      );
    });
  }

  test('refuses impossible sampling with BAD_INPUT', async () => {
    await assert.rejects(backend().generate([req('z', 'q', { maxNewTokens: 0 })]), (err: EngineError) => err.code === 'BAD_INPUT' && /request z: maxNewTokens/.test(err.message));
    await assert.rejects(backend().generate([req('z', 'q', { topP: 0 })]), (err: EngineError) => err.code === 'BAD_INPUT');
    assert.equal(server.requests.length, 0);
  });
});
