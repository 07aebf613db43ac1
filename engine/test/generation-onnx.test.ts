import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { EngineError } from '../src/errors';
import { GREEDY, type GenerationRequest, type GenerationResult, type SamplingParams } from '../src/generation/backend';
import { OnnxBackend } from '../src/generation/onnx/backend';
import { loadTemplate, refinePrompt } from '../src/refinement/template';
import { exportSlots, tinyModel } from './support/tiny-model';

/** OnnxBackend end to end on a real trained tiny model (onnxruntime-node, CPU). */

const model = tinyModel();
const skip = model.skip;

const PROMPTS = ['3+4=', '12+7=', 'repeat: cat dog sun', 'repeat: red green blue moon tree', '9+19=', 'héllo 😀 say something long', 'x'];

function req(key: string, prompt: string, sampling: Partial<SamplingParams> = {}): GenerationRequest {
  return { key, prompt, sampling: { ...GREEDY, maxNewTokens: 24, ...sampling } };
}

const texts = (results: GenerationResult[]) => results.map((r) => r.text);

async function rejectsWithCode(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof EngineError, `expected an EngineError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

describe('OnnxBackend', { skip }, () => {
  let backend: OnnxBackend;
  let single: OnnxBackend;

  before(async () => {
    backend = await OnnxBackend.open({ modelDir: model.dir!, batchSize: 4, intraOpNumThreads: 1 });
    single = await OnnxBackend.open({ modelDir: model.dir!, batchSize: 1, intraOpNumThreads: 1 });
  });
  after(async () => {
    await backend?.close();
    await single?.close();
  });

  test('greedy decoding is deterministic and fills every result field', async () => {
    const requests = PROMPTS.map((p, i) => req(`g${i}`, p));
    const first = await backend.generate(requests);
    const second = await backend.generate(requests);
    assert.deepEqual(texts(second), texts(first));
    assert.deepEqual(
      first.map((r) => r.key),
      requests.map((r) => r.key),
      'results come back in request order',
    );
    for (const r of first) {
      assert.ok(r.promptTokens > 0 && r.completionTokens > 0 && r.durationMs >= 0, JSON.stringify(r));
      assert.ok(r.finishReason === 'stop' || r.completionTokens === 24, JSON.stringify(r));
    }
    assert.ok(new Set(texts(first)).size > 1, 'different prompts give different texts');
  });

  test('each call logs its figures at debug level: tokens, steps, prompt tokens run and taken from the prefix cache', async () => {
    const lines: string[] = [];
    const logger = { debug: (m: string) => void lines.push(m), info: () => undefined, warn: () => undefined, error: () => undefined };
    const logged = await OnnxBackend.open({ modelDir: model.dir!, batchSize: 2, intraOpNumThreads: 1, logger });
    try {
      const prompt = 'repeat: red green blue moon tree';
      const [a] = await logged.generate([req('l1', prompt, { maxNewTokens: 6 })]);
      await logged.generate([req('l2', prompt, { maxNewTokens: 6 })]);
      const line = /^onnx call of 1: (\d+) tokens, (\d+) steps, \d+ ms \(\d+ in forward passes\), (\d+) prompt tokens run, (\d+) from the prefix cache$/;
      const calls = lines.filter((l) => l.startsWith('onnx call')).map((l) => {
        const m = line.exec(l);
        assert.ok(m, `a call's debug line: ${l}`);
        return { tokens: Number(m[1]), steps: Number(m[2]), run: Number(m[3]), cached: Number(m[4]) };
      });
      assert.equal(calls.length, 2);
      assert.deepEqual(calls[0], { tokens: a!.completionTokens, steps: calls[0]!.steps, run: a!.promptTokens, cached: 0 });
      // The same prompt again: all of it but the last token (whose logits are needed) comes from the cache.
      assert.deepEqual(calls[1], { tokens: a!.completionTokens, steps: calls[0]!.steps, run: 1, cached: a!.promptTokens - 1 });
      assert.ok(calls[0]!.steps > 0);
    } finally {
      await logged.close();
    }
  });

  test('batched greedy gives the texts of one-at-a-time greedy', async () => {
    // 7 prompts of different lengths in batches of 4: left padding, and rows finishing at different steps.
    const requests = PROMPTS.map((p, i) => req(`b${i}`, p));
    const batched = await backend.generate(requests);
    const alone = await single.generate(requests);
    assert.deepEqual(texts(batched), texts(alone));
    assert.deepEqual(
      batched.map((r) => r.completionTokens),
      alone.map((r) => r.completionTokens),
    );
  });

  test('seeded sampling is reproducible and does not depend on the rest of the batch', async () => {
    const sampling = { temperature: 1.2, topP: 0.95, topK: 40, seed: 1234 };
    const target = req('target', 'repeat: cat dog sun', sampling);
    const crowd = PROMPTS.map((p, i) => req(`c${i}`, p, { temperature: 1, seed: i }));
    const a = await backend.generate([target]);
    const b = await backend.generate([target]);
    const c = await backend.generate([...crowd.slice(0, 2), target, ...crowd.slice(2)]);
    const d = await single.generate([target]);
    assert.equal(b[0]!.text, a[0]!.text);
    assert.equal(c.find((r) => r.key === 'target')!.text, a[0]!.text);
    assert.equal(d[0]!.text, a[0]!.text);
    const seeds = await backend.generate([1, 2, 3, 4, 5, 6].map((seed) => req(`s${seed}`, 'repeat: cat dog sun', { ...sampling, seed })));
    assert.ok(new Set(texts(seeds)).size > 1, `different seeds should give different texts: ${JSON.stringify(texts(seeds))}`);
  });

  test('maxNewTokens ends a sequence with finishReason "length"', async () => {
    const full = await backend.generate(PROMPTS.map((p, i) => req(`l${i}`, p, { maxNewTokens: 16 })));
    const long = full.find((r) => r.completionTokens >= 4 && r.finishReason === 'length') ?? full.find((r) => r.completionTokens >= 4);
    assert.ok(long, `some prompt should give 4+ tokens: ${JSON.stringify(full)}`);
    const prompt = PROMPTS[full.indexOf(long)]!;
    const cut = long.completionTokens - 1;
    const [short] = await backend.generate([req('short', prompt, { maxNewTokens: cut })]);
    assert.equal(short!.finishReason, 'length');
    assert.equal(short!.completionTokens, cut);
    assert.ok(long.text.startsWith(short!.text), `${JSON.stringify(short!.text)} should start ${JSON.stringify(long.text)}`);
    const [none] = await backend.generate([req('none', prompt, { maxNewTokens: 0 })]);
    assert.deepEqual([none!.text, none!.finishReason, none!.completionTokens], ['', 'length', 0]);
  });

  test('stop strings cut the text before the stop string, also when streamed', async () => {
    const outputs = await backend.generate(PROMPTS.map((p, i) => req(`f${i}`, p, { maxNewTokens: 30 })));
    const longest = outputs.reduce((a, b) => (b.text.length > a.text.length ? b : a));
    const prompt = PROMPTS[outputs.indexOf(longest)]!;
    const text = longest.text;
    assert.ok(text.length >= 4, `need a longer text to cut: ${JSON.stringify(text)}`);
    const stop = text.slice(2, 4);
    const expected = text.slice(0, text.indexOf(stop));
    const deltas: string[] = [];
    const [cut] = await backend.generate([req('cut', prompt, { maxNewTokens: 30, stop: ['NEVER-THERE', stop] })], {
      onDelta: (_key, d) => deltas.push(d),
    });
    assert.equal(cut!.text, expected);
    assert.equal(cut!.finishReason, 'stop');
    assert.equal(deltas.join(''), expected, 'streamed text never includes the stop string');
    const [unmatched] = await backend.generate([req('u', prompt, { maxNewTokens: 30, stop: ['NEVER-THERE'] })]);
    assert.equal(unmatched!.text, text);
  });

  test('onDelta streams each request’s text; onResult reports each request once', async () => {
    const requests = PROMPTS.map((p, i) => req(`d${i}`, p));
    const streamed = new Map<string, string>();
    const reported: string[] = [];
    const results = await backend.generate(requests, {
      onDelta: (key, d) => streamed.set(key, (streamed.get(key) ?? '') + d),
      onResult: (r) => reported.push(r.key),
    });
    for (const r of results) assert.equal(streamed.get(r.key) ?? '', r.text, r.key);
    assert.deepEqual([...reported].sort(), requests.map((r) => r.key).sort());
  });

  test('a chat prompt and the same text as a string prompt give the same completion', async () => {
    const [asString] = await backend.generate([req('s', '12+7=')]);
    const [asChat] = await backend.generate([{ key: 'c', prompt: [{ role: 'user', content: '12+7=' }], sampling: { ...GREEDY, maxNewTokens: 24 } }]);
    assert.equal(asChat!.text, asString!.text);
    assert.equal(asChat!.promptTokens, asString!.promptTokens);
  });

  test('an AbortSignal cancels between steps with code CANCELLED', async () => {
    const controller = new AbortController();
    const requests = PROMPTS.map((p, i) => req(`x${i}`, p, { maxNewTokens: 200 }));
    await rejectsWithCode(backend.generate(requests, { signal: controller.signal, onDelta: () => controller.abort() }), 'CANCELLED');
    await rejectsWithCode(backend.generate(requests, { signal: AbortSignal.abort() }), 'CANCELLED');
    const [after] = await backend.generate([req('after', '3+4=')]);
    assert.ok(after!.completionTokens > 0, 'the backend still works after a cancellation');
  });

  test('bad sampling parameters are refused before anything runs, naming the request', async () => {
    await rejectsWithCode(backend.generate([req('ok', '1+1='), req('hot', '1+1=', { temperature: -1 })]), 'BAD_INPUT', /request "hot".*temperature/);
    await rejectsWithCode(backend.generate([req('p', '1+1=', { topP: 0 })]), 'BAD_INPUT', /topP/);
    await rejectsWithCode(backend.generate([req('k', '1+1=', { topK: 2.5 })]), 'BAD_INPUT', /topK/);
  });

  test('a prompt longer than the model’s positions is refused; a long one gets a shorter budget', async () => {
    const positions = (JSON.parse(readFileSync(join(model.dir!, 'config.json'), 'utf8')) as { max_position_embeddings: number }).max_position_embeddings;
    await rejectsWithCode(backend.generate([req('huge', 'y'.repeat(positions))]), 'BAD_INPUT', /request "huge": the prompt is \d+ tokens; .* takes at most \d+ \(max_position_embeddings\)/);
    const [long] = await backend.generate([req('long', 'y'.repeat(positions - 20), { maxNewTokens: 500 })]);
    assert.ok(long!.promptTokens + long!.completionTokens <= positions, JSON.stringify(long));
  });

  test('a chat-form refinement template: step k runs only the instruction after step k-1’s whole sequence', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aries-chat-template-'));
    try {
      const path = join(dir, 'refinement.json');
      writeFileSync(path, JSON.stringify({ version: 1, format: 'chat', instruction: 'Check the previous answer and give a better one.' }));
      const template = loadTemplate(path);
      for (const q of ['3+4=', 'repeat: cat dog sun', '9+19=']) {
        const [y0] = await backend.generate([req(`t0-${q}`, q)]);
        const before = backend.stats.reusedTokens;
        const prompt = refinePrompt(template, q, y0!.text);
        assert.deepEqual(prompt, [{ role: 'user', content: q }, { role: 'assistant', content: y0!.text }, { role: 'user', content: template.template }]);
        const [y1] = await backend.generate([{ ...req(`t1-${q}`, ''), prompt }]);
        const reused = backend.stats.reusedTokens - before;
        // Everything step 0 fed the model (its prompt, its answer but the last token) comes from the cache.
        assert.ok(reused >= y0!.promptTokens + y0!.completionTokens - 1, `${q}: reused ${reused} of ${y1!.promptTokens} prompt tokens; step 0 fed ${y0!.promptTokens + y0!.completionTokens - 1}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a prefill split by rows (a big vocabulary, no logits_to_keep) gives the texts of one prefill', async () => {
    // A budget of one row's logits at a time: every prompt is prefilled on its own, then merged.
    const split = await OnnxBackend.open({ modelDir: model.dir!, batchSize: 4, intraOpNumThreads: 1, prefillLogitsBytes: 1 });
    try {
      const requests = PROMPTS.map((p, i) => req(`v${i}`, p));
      const one = await backend.generate(requests);
      const before = split.stats.batches;
      const parts = await split.generate(requests);
      assert.deepEqual(texts(parts), texts(one));
      assert.equal(split.stats.batches - before, PROMPTS.length, 'one prefill per row');
    } finally {
      await split.close();
    }
  });

  test('calls made at the same time both complete: one after the other, or sharing the batch (continuous batching)', async () => {
    const merging = await OnnxBackend.open({ modelDir: model.dir!, batchSize: 4, intraOpNumThreads: 1, continuousBatching: true, prefixCacheBytes: 0 });
    try {
      assert.equal(backend.mergesCalls, false);
      assert.equal(merging.mergesCalls, true);
      for (const b of [backend, merging]) {
        const before = b.stats.steps;
        const [one] = await b.generate([req('p0', '3+4=', { maxNewTokens: 12 })]);
        const alone = b.stats.steps - before;
        const [x, y] = await Promise.all([b.generate([req('p1', '3+4=', { maxNewTokens: 12 })]), b.generate([req('p2', '3+4=', { maxNewTokens: 12 })])]);
        assert.equal(x[0]!.text, one!.text);
        assert.equal(y[0]!.text, one!.text);
        const both = b.stats.steps - before - alone;
        if (b === merging) assert.ok(both < 2 * alone, `the second call joined the first one’s batch (${both} steps for two, ${alone} for one)`);
        else assert.equal(both, 2 * alone, 'static batches: the second call ran after the first');
      }
    } finally {
      await merging.close();
    }
  });

  test('refinement chains: continuous batching, the prefix cache and speculation give the texts and tokens of static batches', async () => {
    const template = loadTemplate();
    const questions = PROMPTS.slice(0, 6);
    const steps = 3;
    const staticBackend = await OnnxBackend.open({ modelDir: model.dir!, batchSize: 4, intraOpNumThreads: 1, continuousBatching: false, prefixCacheBytes: 0 });
    const fast = await OnnxBackend.open({ modelDir: model.dir!, batchSize: 4, intraOpNumThreads: 1, continuousBatching: true, speculativeTokens: 8 });
    try {
      // Static: every trajectory's step k in one call (lock step), nothing cached.
      const lockStep: GenerationResult[][] = questions.map(() => []);
      let previous: string[] = [];
      for (let k = 0; k < steps; k++) {
        const results = await staticBackend.generate(questions.map((q, i) => req(`s${i}`, k === 0 ? q : (refinePrompt(template, q, previous[i]!) as string))));
        results.forEach((r, i) => lockStep[i]!.push(r));
        previous = texts(results);
      }
      // Continuous: each trajectory asks for its next step as soon as it has the last one.
      const chained = await Promise.all(
        questions.map(async (q, i) => {
          const out: GenerationResult[] = [];
          for (let k = 0; k < steps; k++) {
            const [r] = await fast.generate([req(`c${i}`, k === 0 ? q : (refinePrompt(template, q, out[k - 1]!.text) as string))]);
            out.push(r!);
          }
          return out;
        }),
      );
      assert.deepEqual(chained.map((t) => t.map((r) => r.text)), lockStep.map((t) => t.map((r) => r.text)));
      assert.deepEqual(chained.map((t) => t.map((r) => r.completionTokens)), lockStep.map((t) => t.map((r) => r.completionTokens)));
      const s = fast.stats;
      assert.ok(s.reusedTokens > 0, `prompt tokens taken from the cache: ${JSON.stringify(s)}`);
      assert.equal(s.prefilledTokens + s.reusedTokens, staticBackend.stats.prefilledTokens, 'every prompt token is either run or reused');
      assert.ok(s.batches > staticBackend.stats.batches, `rows were admitted into the running batch: ${JSON.stringify(s)}`);
      assert.ok(s.acceptedTokens > 0 && s.steps < staticBackend.stats.steps, `draft tokens kept, fewer steps: ${JSON.stringify(s)}`);
    } finally {
      await staticBackend.close();
      await fast.close();
    }
  });
});

describe('OnnxBackend on the slot-cache graph (onnx/model_slots.onnx)', { skip }, () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'aries-slots-'));
    cpSync(model.dir!, dir, { recursive: true });
    exportSlots(dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('refinement chains with the prefix cache, continuous batching and speculation give the tokens of optimum\'s graph in static batches', async () => {
    const template = loadTemplate();
    const questions = PROMPTS;
    const steps = 3;
    const present = await OnnxBackend.open({ modelDir: dir, cacheGraph: 'present', batchSize: 4, intraOpNumThreads: 1, prefixCacheBytes: 0 });
    const slots = await OnnxBackend.open({ modelDir: dir, batchSize: 3, intraOpNumThreads: 1, continuousBatching: true, speculativeTokens: 4 });
    const plain = await OnnxBackend.open({ modelDir: dir, cacheGraph: 'slots', batchSize: 4, intraOpNumThreads: 1 });
    try {
      const lockStep = async (backend: OnnxBackend, tag: string) => {
        const all: GenerationResult[][] = questions.map(() => []);
        let previous: string[] = [];
        for (let k = 0; k < steps; k++) {
          const results = await backend.generate(questions.map((q, i) => req(`${tag}${i}`, k === 0 ? q : (refinePrompt(template, q, previous[i]!) as string), { maxNewTokens: 40 })));
          results.forEach((r, i) => all[i]!.push(r));
          previous = texts(results);
        }
        return all;
      };
      const want = await lockStep(present, 'p');
      const chained = await Promise.all(
        questions.map(async (q, i) => {
          const out: GenerationResult[] = [];
          for (let k = 0; k < steps; k++) {
            const [r] = await slots.generate([req(`c${i}`, k === 0 ? q : (refinePrompt(template, q, out[k - 1]!.text) as string), { maxNewTokens: 40 })]);
            out.push(r!);
          }
          return out;
        }),
      );
      const tokens = (all: GenerationResult[][]) => all.map((t) => t.map((r) => [r.text, r.completionTokens, r.finishReason]));
      assert.deepEqual(tokens(chained), tokens(want));
      assert.deepEqual(tokens(await lockStep(plain, 's')), tokens(want));
      const s = slots.stats;
      assert.ok(s.reusedTokens > 0 && s.acceptedTokens > 0, `the prefix cache and speculation were used: ${JSON.stringify(s)}`);
    } finally {
      await present.close();
      await slots.close();
      await plain.close();
    }
  });

  test('generation.onnxCache "slots" on a folder without the graph is refused, naming the file and the fix', async () => {
    const bare = join(dir, 'without-slots');
    cpSync(model.dir!, bare, { recursive: true });
    rmSync(join(bare, 'onnx/model_slots.onnx'), { force: true });
    await rejectsWithCode(OnnxBackend.open({ modelDir: bare, cacheGraph: 'slots' }), 'BAD_INPUT', /onnx\/model_slots\.onnx: missing; generation\.onnxCache is "slots".*export/);
  });
});

describe('OnnxBackend with a broken model folder', { skip }, () => {
  let work: string;
  before(() => {
    work = mkdtempSync(join(tmpdir(), 'aries-bad-model-'));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  function copyModel(name: string): string {
    const dir = join(work, name);
    cpSync(model.dir!, dir, { recursive: true });
    return dir;
  }

  test('no folder at all', async () => {
    await rejectsWithCode(OnnxBackend.open({ modelDir: join(work, 'nope') }), 'BAD_INPUT', /nope: the model folder does not exist/);
  });

  test('missing onnx/model.onnx', async () => {
    const dir = copyModel('no-onnx');
    rmSync(join(dir, 'onnx'), { recursive: true });
    await rejectsWithCode(OnnxBackend.open({ modelDir: dir }), 'BAD_INPUT', /no-onnx\/onnx\/model\.onnx: missing.*aries_trainer export/);
  });

  test('missing tokenizer.json', async () => {
    const dir = copyModel('no-tokenizer');
    rmSync(join(dir, 'tokenizer.json'));
    await rejectsWithCode(OnnxBackend.open({ modelDir: dir }), 'BAD_INPUT', /no-tokenizer\/tokenizer\.json: missing/);
  });

  test('config.json without the layer count', async () => {
    const dir = copyModel('no-layers');
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    delete config.num_hidden_layers;
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    await rejectsWithCode(OnnxBackend.open({ modelDir: dir }), 'BAD_INPUT', /no-layers\/config\.json: no "num_hidden_layers"/);
  });

  test('config.json that disagrees with the graph', async () => {
    const dir = copyModel('wrong-layers');
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, number>;
    config.num_hidden_layers = config.num_hidden_layers! + 1;
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    await rejectsWithCode(OnnxBackend.open({ modelDir: dir }), 'BAD_INPUT', /model\.onnx: the graph has \d+ layers of past_key_values but .*config\.json says num_hidden_layers/);
  });

  test('a file that is not an ONNX graph', async () => {
    const dir = copyModel('garbage');
    writeFileSync(join(dir, 'onnx/model.onnx'), 'not a model');
    await rejectsWithCode(OnnxBackend.open({ modelDir: dir }), 'BAD_INPUT', /garbage\/onnx\/model\.onnx: onnxruntime cannot load the graph/);
  });
});
