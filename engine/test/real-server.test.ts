import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { EngineError } from '../src/errors';
import { GREEDY, type GenerationRequest, type SamplingParams } from '../src/generation/backend';
import { OnnxBackend } from '../src/generation/onnx/backend';
import { OpenAIBackend } from '../src/generation/openai/backend';
import { runCli } from './support/bundled-cli';
import { tinyModel } from './support/tiny-model';
import { type TransformersServe, servableCopy, startTransformersServe, transformersServeUnavailable } from './support/transformers-serve';

/**
 * The engine's `openai` backend against a real OpenAI-compatible server: `transformers serve`
 * (the pinned venv's transformers 4.57.6) serving the bundled model's checkpoint on CPU, the
 * model's own chat template applied by the server. What it does differently from the stand-in
 * server (engine/test/support/loopback-openai-server.ts) is listed in docs/servers.md; each case
 * below pins one of those differences and the engine's handling of it. Then a whole round
 * (generate, score, select, export) runs through it from the CLI.
 */

const unavailable = transformersServeUnavailable();
const model = unavailable ? { skip: unavailable } : tinyModel({ needsPyTorchWeights: true });
const skip = model.skip;

const QUESTIONS = ['Compute 37+45.', 'Compute 12+89.', 'What is 70 plus 16?', 'Compute 58+31.', 'Add 23 and 19.', 'Compute 64+27.'];
const ROUND_PROMPTS = 24;
const greedy = (maxNewTokens = 28): SamplingParams => ({ ...GREEDY, maxNewTokens });
const chatRequests = (sampling: SamplingParams): GenerationRequest[] =>
  QUESTIONS.map((q, i) => ({ key: `q${i}`, prompt: [{ role: 'user', content: q }], sampling }));

describe('transformers serve: a real OpenAI-compatible server', { skip, timeout: 600_000 }, () => {
  let work: string;
  let served: string;
  let server: TransformersServe;
  let local: OnnxBackend;
  const backend = (extra: Partial<ConstructorParameters<typeof OpenAIBackend>[0]> = {}): OpenAIBackend =>
    new OpenAIBackend({ baseUrl: server.baseUrl, model: server.model, maxConcurrency: 3, requestTimeoutMs: 60_000, retry: { maxAttempts: 1 }, ...extra });

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'aries-real-server-'));
    served = servableCopy(model.dir!, join(work, 'model'));
    server = await startTransformersServe(served);
    local = await OnnxBackend.open({ modelDir: served, batchSize: QUESTIONS.length, intraOpNumThreads: 1 });
  });
  after(async () => {
    if (process.env.ARIES_SERVER_LOG === '1' && server) process.stderr.write(`--- transformers serve:\n${server.log()}\n`);
    await local?.close();
    await server?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('greedy chat answers equal the local ONNX backend\'s: the server applies the same chat template', async () => {
    const b = backend();
    try {
      const remote = await b.generate(chatRequests(greedy()));
      const onnx = await local.generate(chatRequests(greedy()));
      assert.deepEqual(remote.map((r) => r.text), onnx.map((r) => r.text));
      assert.ok(remote.some((r) => /#### \d+/.test(r.text)), `the bundled model answers in its format: ${JSON.stringify(remote.map((r) => r.text))}`);
    } finally {
      await b.close();
    }
  });

  test('stream: false is answered with a stream; the engine reads either shape', async () => {
    const raw = await fetch(`${server.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: server.model, messages: [{ role: 'user', content: QUESTIONS[0] }], max_tokens: 8, temperature: 0, stream: false }),
    });
    assert.match(raw.headers.get('content-type') ?? '', /text\/event-stream/, 'the difference this case pins');
    const body = await raw.text();
    assert.match(body, /^data: /m);
    assert.doesNotMatch(body, /"usage"/, 'and it sends no token counts');
    const b = backend();
    try {
      const deltas = new Map<string, string[]>();
      const whole = await b.generate(chatRequests(greedy()));
      const streamed = await b.generate(chatRequests(greedy()), { onDelta: (k, d) => deltas.set(k, [...(deltas.get(k) ?? []), d]) });
      assert.deepEqual(streamed.map((r) => r.text), whole.map((r) => r.text));
      for (const r of streamed) assert.equal((deltas.get(r.key) ?? []).join(''), r.text, `${r.key}: the pieces make the text`);
      assert.ok([...deltas.values()].some((pieces) => pieces.length > 1), 'text came in pieces');
    } finally {
      await b.close();
    }
  });

  test('sampling: a temperature and per-request seeds give varied answers, temperature 0 repeats', async () => {
    const b = backend({ maxConcurrency: 1 });
    try {
      const prompt = [{ role: 'user' as const, content: QUESTIONS[1]! }];
      const sampled = await b.generate([1, 2, 3, 4, 5, 6].map((seed) => ({ key: `s${seed}`, prompt, sampling: { ...greedy(), temperature: 1.5, seed } })));
      assert.ok(new Set(sampled.map((r) => r.text)).size >= 2, `6 seeds gave one answer: ${sampled[0]!.text}`);
      const repeated = await b.generate([1, 2, 3].map((seed) => ({ key: `g${seed}`, prompt, sampling: { ...greedy(), seed } })));
      assert.equal(new Set(repeated.map((r) => r.text)).size, 1);
    } finally {
      await b.close();
    }
  });

  test('stop strings: sent, the server fails the request (its generate() has no tokenizer); serverStop false cuts them in the engine', async () => {
    const stop = { ...greedy(), stop: ['####'] };
    const sent = backend({ requestTimeoutMs: 6_000 });
    try {
      await assert.rejects(sent.generate(chatRequests(stop).slice(0, 1)), (err: unknown) => {
        assert.ok(err instanceof EngineError, String(err));
        assert.match(err.message, /6 s|timed out|no data|silence/i);
        return true;
      });
    } finally {
      await sent.close();
    }
    const cut = backend({ serverStop: false });
    try {
      const full = await cut.generate(chatRequests(greedy()));
      const stopped = await cut.generate(chatRequests(stop));
      stopped.forEach((r, i) => {
        const at = full[i]!.text.indexOf('####');
        assert.equal(r.text, at >= 0 ? full[i]!.text.slice(0, at) : full[i]!.text);
        assert.ok(!r.text.includes('####'));
      });
      assert.ok(full.some((r) => r.text.includes('####')), 'the stop string occurs, so the cut is tested');
    } finally {
      await cut.close();
    }
  });

  test('what it refuses: /completions (404) and top_k (422), each a clear error that quotes the server', async () => {
    const completions = backend({ mode: 'completions' });
    try {
      await assert.rejects(completions.generate([{ key: 'c', prompt: 'Compute 1+2.', sampling: greedy() }]), (err: unknown) => {
        assert.ok(err instanceof EngineError);
        assert.match(err.message, /HTTP 404/);
        assert.match(err.message, /mode 'chat'/);
        return true;
      });
    } finally {
      await completions.close();
    }
    const topK = backend();
    try {
      await assert.rejects(topK.generate([{ key: 'k', prompt: QUESTIONS[0]!, sampling: { ...greedy(), temperature: 1, topK: 5 } }]), (err: unknown) => {
        assert.ok(err instanceof EngineError);
        assert.match(err.message, /HTTP 422.*top_k/);
        return true;
      });
    } finally {
      await topK.close();
    }
  });

  test('a whole round through the server from the CLI: generate, score, select, export', () => {
    const root = join(work, 'project');
    mkdirSync(root);
    // 24 sums sampled at temperature 1: a round with no verifier pair (every trajectory all right
    // or all wrong) is then very unlikely with this model (~60 % right at first).
    const rows = Array.from({ length: ROUND_PROMPTS }, (_, i) => {
      const a = 10 + ((i * 37 + 11) % 90);
      const b = 10 + ((i * 53 + 29) % 90);
      return { id: `r${i}`, prompt: `Compute ${a}+${b}.`, answer: a + b };
    });
    writeFileSync(join(root, 'train.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const config = {
      name: 'real-server',
      model: server.model,
      prompts: { train: ['train.jsonl'] },
      generation: { backend: 'openai', refinements: 2, maxNewTokens: 28, temperature: 1.0, stopWhenRepeated: false, openai: { baseUrl: server.baseUrl, maxConcurrency: 3, timeoutMs: 60_000 } },
      selection: { strategy: 'verifier', compute: ['verifier', 'rule'] },
    };
    writeFileSync(join(root, 'aries.json'), JSON.stringify(config, null, 2));
    for (const step of [['generate'], ['score'], ['select'], ['export']]) {
      const r = runCli([...step, '-p', root], { timeoutMs: 300_000 });
      assert.equal(r.code, 0, `aries ${step.join(' ')} exited ${r.code} (${r.signal ?? 'no signal'}): ${r.stderr}\n${r.stdout}\n--- server:\n${server.log().slice(-1500)}`);
    }
    const db = new Database(join(root, '.aries/aries.db'), { readonly: true });
    try {
      const steps = db.prepare('SELECT COUNT(*) AS n, SUM(length(text) > 0) AS filled FROM steps').get() as { n: number; filled: number };
      assert.equal(steps.n, ROUND_PROMPTS * 3, 'y0 and two refinements per prompt');
      assert.equal(steps.filled, steps.n);
      const selected = db.prepare("SELECT COUNT(*) AS n, SUM(status = 'pair' AND strategy = 'verifier') AS pairs FROM selections").get() as { n: number; pairs: number };
      assert.equal(selected.n, ROUND_PROMPTS * 2, 'a verifier and a rule decision per trajectory');
      const exported = db.prepare('SELECT path FROM exports ORDER BY id DESC LIMIT 1').get() as { path: string };
      const lines = readFileSync(exported.path, 'utf8').split('\n').filter(Boolean).length;
      assert.equal(lines, 2 * selected.pairs, 'a direct and a refine row per verifier pair (the selection strategy)');
    } finally {
      db.close();
    }
  });
});

describe('transformers serve across rounds: the trained checkpoint is served by its path', { skip, timeout: 600_000 }, () => {
  let work: string;
  let server: TransformersServe;
  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'aries-real-server-rounds-'));
    server = await startTransformersServe(servableCopy(model.dir!, join(work, 'model')), { forceModel: false });
  });
  after(async () => {
    await server?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('aries run trains round 1 (the real trainer), then round 2 is collected by the server from round 1\'s checkpoint', () => {
    const root = join(work, 'project');
    mkdirSync(root);
    const sums = (n: number, offset: number) =>
      Array.from({ length: n }, (_, i) => {
        const a = 10 + (((i + offset) * 37 + 11) % 90);
        const b = 10 + (((i + offset) * 53 + 29) % 90);
        return JSON.stringify({ id: `s${offset + i}`, prompt: `Compute ${a}+${b}.`, answer: a + b });
      }).join('\n') + '\n';
    writeFileSync(join(root, 'train.jsonl'), sums(ROUND_PROMPTS, 0));
    writeFileSync(join(root, 'heldout.jsonl'), sums(8, 500));
    const config = {
      name: 'real-server-rounds',
      model: join(work, 'model'),
      prompts: { train: ['train.jsonl'], heldout: ['heldout.jsonl'] },
      // loadFirst: after training, the first requests name a checkpoint the server has not loaded;
      // sent together, transformers serve loads it once per request and fails them (HTTP 500).
      generation: { backend: 'openai', refinements: 2, maxNewTokens: 28, temperature: 1.0, stopWhenRepeated: false, openai: { baseUrl: server.baseUrl, maxConcurrency: 3, timeoutMs: 60_000, loadFirst: true } },
      evaluation: { limit: 8, refinements: 1, maxNewTokens: 28 },
      export: { kinds: ['direct', 'refine', 'keep'] },
      training: { objective: 'sft', sft: { learning_rate: 0.0003, num_train_epochs: 1, per_device_train_batch_size: 8, logging_steps: 1 } },
    };
    writeFileSync(join(root, 'aries.json'), JSON.stringify(config, null, 2));
    const run = runCli(['run', root, '--rounds', '1'], { timeoutMs: 400_000 });
    assert.equal(run.code, 0, `aries run: ${run.stderr}\n--- server:\n${server.log().slice(-1500)}`);
    const next = runCli(['generate', '-p', root], { timeoutMs: 300_000 });
    assert.equal(next.code, 0, `aries generate (round 2): ${next.stderr}\n--- server:\n${server.log().slice(-1500)}`);
    const db = new Database(join(root, '.aries/aries.db'), { readonly: true });
    try {
      const trained = db.prepare("SELECT id, backend, path FROM models WHERE name = 'round-1'").get() as { id: number; backend: string; path: string };
      assert.equal(trained.backend, 'openai');
      assert.ok(trained.path.includes('round-1'), trained.path);
      const round2 = db
        .prepare('SELECT COUNT(*) AS n, SUM(s.model_id = ?) AS byTrained, SUM(length(s.text) > 0) AS filled FROM steps s JOIN trajectories t ON t.id = s.trajectory_id JOIN rounds r ON r.id = t.round_id WHERE r.idx = 2')
        .get(trained.id) as { n: number; byTrained: number; filled: number };
      assert.equal(round2.n, ROUND_PROMPTS * 3);
      assert.equal(round2.byTrained, round2.n, 'every round-2 step came from the trained checkpoint');
      assert.equal(round2.filled, round2.n);
    } finally {
      db.close();
    }
  });
});
