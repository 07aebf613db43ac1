import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MalformedResponse } from '../src/generation/openai/http';
import { DEFAULT_RETRY, backoffMs, parseRetryAfter } from '../src/generation/openai/retry';
import { SseDecoder } from '../src/generation/openai/sse';
import { cutAtStop, parseCompletion, parseStreamChunk, requestBody } from '../src/generation/openai/wire';
import { parseProjectConfig } from '../src/project/config';

// The pure parts of the OpenAI client: SSE framing, Retry-After, backoff bounds, answer parsing.

describe('SseDecoder', () => {
  test('events split across pieces at any byte, with \\n, \\r\\n and \\r line ends', () => {
    const text = 'data: {"a":1}\n\n: keep-alive\r\n\r\nevent: x\ndata: two\ndata: lines\r\rdata:[DONE]\n\n';
    for (let cut = 0; cut <= text.length; cut++) {
      const d = new SseDecoder();
      const events = [...d.push(text.slice(0, cut)), ...d.push(text.slice(cut)), ...d.end()];
      assert.deepEqual(events, ['{"a":1}', 'two\nlines', '[DONE]'], `cut at ${cut}`);
    }
  });

  test('an event without its closing blank line is kept at the end', () => {
    const d = new SseDecoder();
    assert.deepEqual(d.push('data: last'), []);
    assert.deepEqual(d.end(), ['last']);
  });
});

describe('Retry-After', () => {
  test('seconds, fractions, HTTP dates, and junk', () => {
    const now = Date.parse('Sun, 29 Nov 2026 12:00:00 GMT');
    assert.equal(parseRetryAfter('3', now), 3000);
    assert.equal(parseRetryAfter(' 1.5 ', now), 1500);
    assert.equal(parseRetryAfter('Sun, 29 Nov 2026 12:00:07 GMT', now), 7000);
    assert.equal(parseRetryAfter('Sun, 29 Nov 2026 11:00:00 GMT', now), 0);
    assert.equal(parseRetryAfter('soon', now), undefined);
    assert.equal(parseRetryAfter('-1', now), undefined);
    assert.equal(parseRetryAfter(null, now), undefined);
  });

  test('backoff doubles, stays within [ceiling/2, ceiling], and is capped', () => {
    const policy = { ...DEFAULT_RETRY, backoffBaseMs: 100, backoffMaxMs: 1000 };
    assert.equal(backoffMs(policy, 1, () => 0), 50);
    assert.equal(backoffMs(policy, 1, () => 1), 100);
    assert.equal(backoffMs(policy, 3, () => 1), 400);
    assert.equal(backoffMs(policy, 20, () => 1), 1000);
    assert.equal(backoffMs(policy, 20, () => 0), 500);
  });
});

describe('answer parsing', () => {
  test('chat content null is an empty answer; unknown finish reasons are stop', () => {
    const c = parseCompletion({ choices: [{ message: { content: null }, finish_reason: 'eos' }] }, 'chat');
    assert.deepEqual(c, { text: '', promptTokens: 0, completionTokens: 0, finishReason: 'stop' });
  });

  test('what is missing is named', () => {
    assert.throws(() => parseCompletion([], 'chat'), (e: Error) => e instanceof MalformedResponse && /not a JSON object/.test(e.message));
    assert.throws(() => parseCompletion({ object: 'list' }, 'chat'), /has no "choices" \(keys: object\)/);
    assert.throws(() => parseCompletion({ choices: [{ text: 'x' }] }, 'chat'), /choices\[0\]\.message is not a JSON object/);
    assert.throws(() => parseCompletion({ choices: [{ message: { content: 3 } }] }, 'chat'), /content is not a string/);
  });

  test('stream chunks: role-only first event, text, finish, usage-only last event', () => {
    assert.deepEqual(parseStreamChunk({ choices: [{ delta: { role: 'assistant' } }] }, 'chat'), { delta: '' });
    assert.deepEqual(parseStreamChunk({ choices: [{ delta: { content: 'hi' }, finish_reason: null }] }, 'chat'), { delta: 'hi' });
    assert.deepEqual(parseStreamChunk({ choices: [{ text: '', finish_reason: 'length' }] }, 'completions'), { delta: '', finishReason: 'length' });
    assert.deepEqual(parseStreamChunk({ choices: [], usage: { prompt_tokens: 5, completion_tokens: 2 } }, 'chat'), { delta: '', usage: { promptTokens: 5, completionTokens: 2 } });
  });
});

describe('stop strings in the engine (serverStop false)', () => {
  const sampling = { temperature: 0, topP: 1, topK: 0, maxNewTokens: 8, stop: ['####', '\n\n'], seed: 1 };
  test('the request leaves `stop` out only when told to', () => {
    assert.deepEqual(requestBody('chat', 'm', [{ role: 'user', content: 'x' }], sampling, false, {}).stop, ['####', '\n\n']);
    assert.equal('stop' in requestBody('chat', 'm', [{ role: 'user', content: 'x' }], sampling, false, {}, false), false);
  });
  test('the text ends before the earliest stop string, which is left out', () => {
    assert.equal(cutAtStop('8+9=17\n\nmore #### 17', sampling.stop), '8+9=17');
    assert.equal(cutAtStop('8+9=17 #### 17\n\n', sampling.stop), '8+9=17 ');
    assert.equal(cutAtStop('no stop here', sampling.stop), undefined);
    assert.equal(cutAtStop('####', ['####']), '');
    assert.equal(cutAtStop('text', ['']), undefined, 'an empty stop string matches nothing');
  });
});

test('aries.json: generation.openai.serverStop defaults to true and must be a boolean', () => {
  const read = (openai: Record<string, unknown>) => parseProjectConfig('aries.json', { model: 'm', generation: { backend: 'openai', openai } });
  assert.equal(read({}).generation.openai.serverStop, true);
  assert.equal(read({ serverStop: false }).generation.openai.serverStop, false);
  assert.throws(() => read({ serverStop: 'no' }), /serverStop/);
  assert.throws(() => read({ serverstop: false }), /serverstop/);
});
