import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { after, afterEach, before, test } from 'node:test';
import { EngineError } from '../src/errors';
import { GREEDY } from '../src/generation/backend';
import { OpenAIBackend } from '../src/generation/openai/backend';
import type { Logger } from '../src/log';
import { type LoopbackServer, startLoopbackServer } from './support/loopback-openai-server';

// The API key is sent, and then appears nowhere else: not in errors (message, hint, stack,
// serialised), not in logs, not in the backend object, even when a server echoes it back.

const KEY_ENV = 'ARIES_TEST_SECRET_KEY';
const KEY = 'sk-aries-SECRET-7f3a9c1e2b4d';

let server: LoopbackServer;
before(async () => {
  server = await startLoopbackServer();
  process.env[KEY_ENV] = KEY;
});
after(async () => {
  delete process.env[KEY_ENV];
  await server.close();
});
afterEach(() => server.reset());

function capture(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const push = (level: string) => (m: string) => lines.push(`${level} ${m}`);
  return { lines, debug: push('debug'), info: push('info'), warn: push('warn'), error: push('error') };
}

function echoAuth(status: number) {
  return (r: { headers: Record<string, string | string[] | undefined> }) => ({
    kind: 'json' as const,
    status,
    body: { error: { message: `rejected credentials: ${String(r.headers.authorization)} (raw ${KEY})` } },
  });
}

function assertKeyAbsent(err: unknown, logs: string[], backend: OpenAIBackend): void {
  assert.ok(err instanceof EngineError);
  const views = [err.message, err.hint ?? '', err.stack ?? '', String(err), JSON.stringify(err), inspect(err, { depth: null, showHidden: true })];
  for (const view of views) assert.equal(view.includes(KEY), false, `the key leaked into: ${view}`);
  for (const line of logs) assert.equal(line.includes(KEY), false, `the key leaked into the log: ${line}`);
  assert.equal(inspect(backend, { depth: null, showHidden: true }).includes(KEY), false, 'the backend keeps the key');
  assert.equal(JSON.stringify(backend).includes(KEY), false);
}

test('the key is sent as a Bearer token', async () => {
  const b = new OpenAIBackend({ baseUrl: server.baseUrl, model: 'm', apiKeyEnv: KEY_ENV });
  await b.generate([{ key: 'a', prompt: 'q', sampling: GREEDY }]);
  assert.equal(server.requests[0].headers.authorization, `Bearer ${KEY}`);
});

test('a 401 that echoes the key: the error and the log do not contain it', async () => {
  server.behave(echoAuth(401));
  const log = capture();
  const b = new OpenAIBackend({ baseUrl: server.baseUrl, model: 'm', apiKeyEnv: KEY_ENV, logger: log });
  const err = await b.generate([{ key: 'a', prompt: 'q', sampling: GREEDY }]).catch((e: unknown) => e);
  assert.ok(err instanceof EngineError && err.code === 'BACKEND');
  assert.match(err.message, /rejected credentials: Bearer \[redacted\] \(raw \[redacted\]\)/);
  assertKeyAbsent(err, log.lines, b);
});

test('retried 500s that echo the key: the retry warnings and the final error do not contain it', async () => {
  server.behave(echoAuth(500));
  const log = capture();
  const b = new OpenAIBackend({ baseUrl: server.baseUrl, model: 'm', apiKeyEnv: KEY_ENV, logger: log, retry: { maxAttempts: 3, backoffBaseMs: 1, backoffMaxMs: 5 } });
  const err = await b.generate([{ key: 'a', prompt: 'q', sampling: GREEDY }]).catch((e: unknown) => e);
  assert.equal(server.requests.length, 3);
  assert.equal(log.lines.filter((l) => l.startsWith('warn') && l.includes('[redacted]')).length, 2, log.lines.join('\n'));
  assertKeyAbsent(err, log.lines, b);
});

test('a stream error event that echoes the key: the error does not contain it', async () => {
  const event = `data: ${JSON.stringify({ error: { message: `quota exceeded for ${KEY}` } })}\n\n`;
  server.behave(() => ({ kind: 'text', text: event, contentType: 'text/event-stream' }));
  const log = capture();
  const b = new OpenAIBackend({ baseUrl: server.baseUrl, model: 'm', apiKeyEnv: KEY_ENV, logger: log, retry: { maxAttempts: 3, backoffBaseMs: 1, backoffMaxMs: 5 } });
  const err = await b.generate([{ key: 'a', prompt: 'q', sampling: GREEDY }], { onDelta: () => undefined }).catch((e: unknown) => e);
  assert.ok(err instanceof EngineError && /quota exceeded for \[redacted\]/.test(err.message), String(err));
  assertKeyAbsent(err, log.lines, b);
});
