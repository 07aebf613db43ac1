import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { EngineError } from '../src/errors';
import { HttpRewardScorer, type HttpRewardScorerOptions } from '../src/score/reward-http';
import { renderScoreText } from '../src/score/score-text';
import type { ScoreInput } from '../src/score/scorer';
import { type LoopbackServer, chatAsText, loopbackLogit, startLoopbackServer } from './support/loopback-openai-server';

// The HTTP reward-model scorer against a loopback server that answers vLLM's /classify and
// /pooling shapes with a known score per text (loopbackLogit).

let server: LoopbackServer;
before(async () => {
  server = await startLoopbackServer();
});
after(() => server.close());
afterEach(() => server.reset());

function scorer(options: Partial<HttpRewardScorerOptions> = {}): HttpRewardScorer {
  return new HttpRewardScorer({ baseUrl: server.url, model: 'rm', apiKeyEnv: 'ARIES_TEST_RM_KEY', retry: { maxAttempts: 3, backoffBaseMs: 5, backoffMaxMs: 20 }, ...options });
}

const INPUTS: ScoreInput[] = [
  { stepId: 11, prompt: 'What is 2+2?', response: '4', reference: '4' },
  { stepId: 12, prompt: [{ role: 'system', content: 'Be exact.' }, { role: 'user', content: 'What is 3*3?' }], response: '9', reference: null },
  { stepId: 13, prompt: 'Name a prime.', response: 'Seven.', reference: null },
];

/** The conversation text the loopback server scores for an input sent as messages. */
function asChat(s: ScoreInput): string {
  const prompt = typeof s.prompt === 'string' ? [{ role: 'user', content: s.prompt }] : s.prompt;
  return chatAsText([...prompt, { role: 'assistant', content: s.response }]);
}

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

describe('/classify', () => {
  test('messages (default): one request per step with the chat and the response; value = raw logit', async () => {
    const results = await scorer({ baseUrl: `${server.url}/v1` }).score(INPUTS);
    assert.equal(server.requests.length, 3);
    assert.ok(server.requests.every((r) => r.path === '/classify'), 'a trailing /v1 is dropped: vLLM serves /classify at the root');
    assert.deepEqual(
      server.requests.map((r) => r.body).find((b) => JSON.stringify(b).includes('3*3')),
      {
        model: 'rm',
        messages: [
          { role: 'system', content: 'Be exact.' },
          { role: 'user', content: 'What is 3*3?' },
          { role: 'assistant', content: '9' },
        ],
        use_activation: false,
      },
    );
    assert.deepEqual(results.map((r) => r.stepId), [11, 12, 13]);
    INPUTS.forEach((s, i) => assert.ok(Math.abs((results[i].value ?? NaN) - loopbackLogit(asChat(s))) < 1e-9));
    assert.deepEqual(results[0].raw, {
      endpoint: 'classify',
      input: 'messages',
      valueIs: 'logit',
      label: 0,
      output: { index: 0, label: 'LABEL_0', probs: [loopbackLogit(asChat(INPUTS[0]))], num_classes: 1 },
    });
  });

  test('text: the documented rendering, batchSize texts per request, results matched by index', async () => {
    const five = [...INPUTS, { ...INPUTS[0], stepId: 14, response: 'four' }, { ...INPUTS[2], stepId: 15, response: '11' }];
    const results = await scorer({ input: 'text', batchSize: 2, maxConcurrency: 1 }).score(five);
    assert.deepEqual(server.requests.map((r) => ((r.body as { input: string[] }).input ?? []).length), [2, 2, 1]);
    assert.equal(renderScoreText('What is 2+2?', '4'), 'user: What is 2+2?\n\nassistant: 4');
    assert.equal(renderScoreText(INPUTS[1].prompt, '9'), 'system: Be exact.\n\nuser: What is 3*3?\n\nassistant: 9');
    assert.deepEqual((server.requests[0].body as { input: string[] }).input, [renderScoreText(five[0].prompt, five[0].response), renderScoreText(five[1].prompt, five[1].response)]);
    five.forEach((s, i) => assert.ok(Math.abs((results[i].value ?? NaN) - loopbackLogit(renderScoreText(s.prompt, s.response))) < 1e-9, `step ${s.stepId}`));
  });

  test('a server that returns data out of index order still lines up with the steps', async () => {
    server.queue({ kind: 'json', body: { data: [2, 0, 1].map((index) => ({ index, probs: [index * 10], num_classes: 1 })) } });
    const results = await scorer({ input: 'text' }).score(INPUTS);
    assert.deepEqual(results.map((r) => r.value), [0, 10, 20]);
  });

  test('activation: true leaves the server activation on and stores a probability', async () => {
    const [r] = await scorer({ activation: true }).score([INPUTS[0]]);
    assert.equal('use_activation' in (server.requests[0].body as object), false);
    assert.ok(Math.abs((r.value ?? NaN) - sigmoid(loopbackLogit(asChat(INPUTS[0])))) < 1e-9);
    assert.equal((r.raw as { valueIs: string }).valueIs, 'probability');
  });

  test('two-column classifiers: value = column 1 by default; an out-of-range label is BAD_INPUT', async () => {
    server.classes = 2;
    const [r] = await scorer().score([INPUTS[0]]);
    assert.ok(Math.abs((r.value ?? NaN) - loopbackLogit(asChat(INPUTS[0]))) < 1e-9);
    assert.equal((r.raw as { label: number }).label, 1);
    const [r0] = await scorer({ label: 0 }).score([INPUTS[0]]);
    assert.ok(Math.abs((r0.value ?? NaN) + loopbackLogit(asChat(INPUTS[0]))) < 1e-9);
    await assert.rejects(scorer({ label: 2 }).score([INPUTS[0]]), (err: EngineError) => err.code === 'BAD_INPUT' && /label 2 is out of range: the model gives 2 value/.test(err.message));
  });
});

describe('/pooling', () => {
  test('per-token output: value = the last token; raw keeps the token count and the last row', async () => {
    const results = await scorer({ endpoint: 'pooling' }).score(INPUTS);
    assert.ok(server.requests.every((r) => r.path === '/pooling'));
    INPUTS.forEach((s, i) => assert.ok(Math.abs((results[i].value ?? NaN) - loopbackLogit(asChat(s))) < 1e-9));
    assert.deepEqual((results[0].raw as { output: unknown }).output, { index: 0, tokens: 3, last: [loopbackLogit(asChat(INPUTS[0]))] });
  });

  test('one vector per text is used as is', async () => {
    server.poolingPerToken = false;
    const results = await scorer({ endpoint: 'pooling', input: 'text' }).score(INPUTS);
    assert.equal(server.requests.length, 1);
    INPUTS.forEach((s, i) => assert.ok(Math.abs((results[i].value ?? NaN) - loopbackLogit(renderScoreText(s.prompt, s.response))) < 1e-9));
  });
});

describe('failures and cancellation', () => {
  test('a 503 is retried', async () => {
    server.queue({ kind: 'json', status: 503, body: {} });
    const results = await scorer().score([INPUTS[0]]);
    assert.equal(results.length, 1);
    assert.equal(server.requests.length, 2);
  });

  test('a wrong number of results is a clear BACKEND error, retried once', async () => {
    server.behave(() => ({ kind: 'json', body: { data: [{ index: 0, probs: [1], num_classes: 1 }] } }));
    const err = await scorer({ input: 'text' }).score(INPUTS).catch((e: unknown) => e);
    assert.ok(err instanceof EngineError && err.code === 'BACKEND');
    assert.match(err.message, new RegExp(`POST ${server.url}/classify: the classify response has 1 results for 3 inputs`));
    assert.equal(server.requests.length, 2);
  });

  test('non-numeric probs are malformed', async () => {
    server.behave(() => ({ kind: 'json', body: { data: [{ index: 0, probs: ['high'] }] } }));
    const err = await scorer().score([INPUTS[0]]).catch((e: unknown) => e);
    assert.ok(err instanceof EngineError && /data\[0\]\.probs is not a non-empty list of numbers/.test(err.message));
  });

  test('a model that does not exist: one request, hint about the URL and model', async () => {
    server.model = 'Skywork/Skywork-Reward-V2-Qwen3-0.6B';
    const err = await scorer({ model: 'skywork' }).score([INPUTS[0]]).catch((e: unknown) => e);
    assert.ok(err instanceof EngineError && err.code === 'BACKEND');
    assert.equal(server.requests.length, 1);
    assert.match(err.hint ?? '', /model name 'skywork'/);
  });

  test('aborting stops in-flight scoring promptly with CANCELLED', async () => {
    server.latencyMs = 5000;
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const started = Date.now();
    const err = await scorer({ maxConcurrency: 2 }).score(INPUTS, { signal: controller.signal }).catch((e: unknown) => e);
    assert.ok(err instanceof EngineError && err.code === 'CANCELLED', String(err));
    assert.match(err.message, /reward-model scoring was cancelled/);
    assert.ok(Date.now() - started < 1000);
    assert.ok(await server.settled(1000));
    assert.equal(server.requests.length, 2);
  });

  test('nothing to score sends nothing', async () => {
    assert.deepEqual(await scorer().score([]), []);
    assert.equal(server.requests.length, 0);
  });

  test('the API key is not in the error when the server echoes it', async () => {
    const key = 'sk-rm-SECRET-0042';
    process.env.ARIES_TEST_RM_KEY = key;
    try {
      server.behave((r) => ({ kind: 'json', status: 403, body: { detail: `forbidden: ${String(r.headers.authorization)}` } }));
      const err = await scorer().score([INPUTS[0]]).catch((e: unknown) => e);
      assert.equal(server.requests[0].headers.authorization, `Bearer ${key}`);
      assert.ok(err instanceof EngineError);
      assert.equal(`${err.message} ${err.hint} ${err.stack}`.includes(key), false);
      assert.match(err.hint ?? '', /check the API key in the environment variable ARIES_TEST_RM_KEY/);
    } finally {
      delete process.env.ARIES_TEST_RM_KEY;
    }
  });

  test('bad settings are BAD_INPUT', () => {
    for (const bad of [{ endpoint: 'score' as never }, { input: 'tokens' as never }, { label: -1 }, { batchSize: 0 }, { endpointPath: 'classify' }, { baseUrl: 'ftp://x' }]) {
      assert.throws(() => scorer(bad), (err: EngineError) => err.code === 'BAD_INPUT', JSON.stringify(bad));
    }
  });
});
