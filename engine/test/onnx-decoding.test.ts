import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { InferenceSession } from 'onnxruntime-node';
import { EngineError } from '../src/errors';
import { GREEDY } from '../src/generation/backend';
import { Completion } from '../src/generation/onnx/completion';
import { describeDecoderGraph } from '../src/generation/onnx/decoder-graph';
import { readModelFolder } from '../src/generation/onnx/model-folder';
import { argmax, largest, nucleus, Rng, TokenSampler } from '../src/generation/onnx/sampling';
import { ModelTokenizer } from '../src/generation/onnx/tokenizer';
import { tinyModel } from './support/tiny-model';

/** The parts of the onnx backend's decoding loop, each on its own. */

describe('sampling', () => {
  test('Rng: the same seed gives the same stream, other seeds other streams, always in [0, 1)', () => {
    const draw = (seed: number) => Array.from({ length: 1000 }, ((r) => () => r.next())(new Rng(seed)));
    assert.deepEqual(draw(7), draw(7));
    for (const seed of [0, 1, -1, 2 ** 40, Number.MAX_SAFE_INTEGER]) {
      const xs = draw(seed);
      assert.ok(xs.every((x) => x >= 0 && x < 1));
      assert.notDeepEqual(xs, draw(seed + 1), `seed ${seed}`);
      const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
      assert.ok(Math.abs(mean - 0.5) < 0.05, `seed ${seed}: mean ${mean}`);
    }
  });

  test('top-k (largest) and top-p (nucleus) agree with a full sort (ties included)', () => {
    const rng = new Rng(3);
    for (let trial = 0; trial < 200; trial++) {
      const n = 1 + Math.floor(rng.next() * 300);
      // few distinct values → many ties
      const values = Float64Array.from({ length: n }, () => (trial % 2 ? Math.floor(rng.next() * 10) : rng.next()));
      const sorted = [...values].sort((a, b) => b - a);
      const k = 1 + Math.floor(rng.next() * n);
      const ids = new Int32Array(n);
      const floats = Float32Array.from(values);
      largest(floats, k, ids, new Float32Array(k));
      const top = [...ids.subarray(0, k)];
      assert.deepEqual(top.map((i) => floats[i]!).sort((a, b) => b - a), [...floats].sort((a, b) => b - a).slice(0, k), `top-${k} of ${n}`);
      const edge = Math.min(...top.map((i) => floats[i]!));
      const tiedIds = [...floats.keys()].filter((i) => floats[i] === edge);
      const keptTied = top.filter((i) => floats[i] === edge).sort((a, b) => a - b);
      assert.deepEqual(keptTied, tiedIds.slice(0, keptTied.length), 'ties at the edge go to the lower ids');

      const total = sorted.reduce((a, b) => a + b, 0);
      const target = rng.next() * total;
      const order2 = Int32Array.from({ length: n }, (_, i) => i);
      const m = nucleus(order2, values, n, target);
      const kept = [...order2.subarray(0, m)].map((i) => values[i]!).sort((a, b) => b - a);
      assert.deepEqual(kept, sorted.slice(0, m), 'the set is the most probable ones');
      assert.ok(kept.reduce((a, b) => a + b, 0) >= target - 1e-9 * total, 'the set reaches the target');
      const last = kept[kept.length - 1]!;
      const withoutLastValue = kept.filter((x) => x !== last).reduce((a, b) => a + b, 0);
      assert.ok(m === 1 || withoutLastValue < target, 'and is the smallest such set (up to ties)');
    }
  });

  test('TokenSampler: greedy takes the first maximum; sampling follows the probabilities; top-k and top-p cut the tail', () => {
    const sampler = new TokenSampler();
    const logits = Float32Array.from([0.5, 0.3, 0.15, 0.05].map(Math.log));
    assert.equal(argmax(Float32Array.from([1, 3, 3, 2])), 1);
    assert.equal(sampler.pick(logits, GREEDY, new Rng(0)), 0);
    const freq = (params: Partial<typeof GREEDY>) => {
      const rng = new Rng(11);
      const counts = [0, 0, 0, 0];
      for (let i = 0; i < 20000; i++) counts[sampler.pick(logits, { ...GREEDY, temperature: 1, ...params }, rng)]!++;
      return counts.map((c) => c / 20000);
    };
    freq({}).forEach((f, i) => assert.ok(Math.abs(f - [0.5, 0.3, 0.15, 0.05][i]!) < 0.015, `token ${i}: ${f}`));
    assert.deepEqual(freq({ topK: 2 }).map((f) => f > 0), [true, true, false, false]);
    assert.deepEqual(freq({ topP: 0.79 }).map((f) => f > 0), [true, true, false, false]);
    assert.deepEqual(freq({ topP: 0.5 }).map((f) => f > 0), [true, false, false, false]);
    const hot = freq({ temperature: 100 });
    assert.ok(hot.every((f) => Math.abs(f - 0.25) < 0.02), `high temperature flattens: ${hot}`);
  });
});

const model = tinyModel();

describe('Completion: incremental text with stop strings', { skip: model.skip }, () => {
  const tokenizer = model.dir ? new ModelTokenizer(readModelFolder(model.dir)) : undefined;
  const run = (text: string, stops: string[]) => {
    const t = tokenizer!;
    const c = new Completion(t, t.encode('<|user|>hi<|end|><|assistant|>'), stops);
    const deltas: string[] = [];
    for (const id of t.encode(text)) {
      const stopped = c.push(id);
      const d = c.takeStreamable(false);
      if (d) deltas.push(d);
      if (stopped) break;
    }
    c.flush();
    const rest = c.takeStreamable(true);
    if (rest) deltas.push(rest);
    return { c, deltas };
  };

  test('multi-byte characters come out whole, never as U+FFFD pieces', () => {
    const { c, deltas } = run('a😀é日', []);
    assert.equal(c.text, 'a😀é日');
    assert.deepEqual(deltas, ['a', '😀', 'é', '日']);
    assert.equal(c.generatedTokens, 1 + 4 + 2 + 3);
  });

  test('a stop string spanning tokens cuts the text; a stop-string prefix is held back, then released', () => {
    const { c, deltas } = run('12 is 19. Then more', ['. Then', 'is 20']);
    assert.equal(c.text, '12 is 19');
    assert.ok(c.stopped);
    assert.equal(deltas.join(''), '12 is 19');
    const t = tokenizer!;
    const held = new Completion(t, t.encode('x'), ['. Then']);
    for (const id of t.encode('ab. T')) held.push(id);
    assert.equal(held.takeStreamable(false), 'ab', '". T" could start ". Then": held back');
    for (const id of t.encode('x')) held.push(id);
    assert.equal(held.takeStreamable(false), '. Tx', 'released once it cannot');
    const earliest = run('xx STOP yy', ['yy', 'STOP']);
    assert.equal(earliest.c.text, 'xx ', 'the earliest stop string wins');
  });

  test('a character cut off at the end decodes as U+FFFD, as a full decode would', () => {
    const t = tokenizer!;
    const c = new Completion(t, t.encode('x'), []);
    for (const id of t.encode('ok😀').slice(0, 4)) c.push(id);
    assert.equal(c.text, 'ok');
    c.flush();
    assert.equal(c.text, t.decode(t.encode('ok😀').slice(0, 4)));
  });
});

describe('decoder graph checks', () => {
  const shape = { layers: 2, kvHeads: 4, headDim: 16, vocabSize: 261, maxPositions: 512 };
  const tensor = (name: string, type: 'float32' | 'float16' | 'int64' | 'bool' = 'float32', dims: (number | string)[] = []): InferenceSession.ValueMetadata => ({
    name,
    isTensor: true,
    type,
    shape: dims,
  });
  const past = (type: 'float32' | 'float16' = 'float32', heads = 4) =>
    [0, 1].flatMap((i) => ['key', 'value'].map((kv) => tensor(`past_key_values.${i}.${kv}`, type, ['batch', heads, 'past', 16])));
  const present = [0, 1].flatMap((i) => ['key', 'value'].map((kv) => tensor(`present.${i}.${kv}`)));
  const ids = [tensor('input_ids', 'int64'), tensor('attention_mask', 'int64')];
  const describe_ = (inputs: InferenceSession.ValueMetadata[], outputs = [tensor('logits'), ...present]) =>
    describeDecoderGraph(inputs, outputs, shape, '/m/onnx/model.onnx', '/m/config.json');
  const refuses = (f: () => unknown, message: RegExp) =>
    assert.throws(f, (err: unknown) => err instanceof EngineError && err.code === 'BAD_INPUT' && message.test(err.message));

  test('an optimum merged decoder: float16 cache, use_cache_branch, no position_ids', () => {
    const g = describe_([...ids, tensor('use_cache_branch', 'bool'), ...past('float16')], [tensor('logits', 'float16'), ...present]);
    assert.deepEqual([g.pastDtype, g.logitsDtype, g.hasUseCacheBranch, g.hasPositionIds], ['float16', 'float16', true, false]);
    assert.deepEqual(g.pastInputs, ['past_key_values.0.key', 'past_key_values.0.value', 'past_key_values.1.key', 'past_key_values.1.value']);
  });

  test('graphs the backend cannot drive are refused, naming the file and the input', () => {
    refuses(() => describe_([...ids]), /model\.onnx: the graph has no past_key_values inputs/);
    refuses(() => describe_([...ids, ...past(), tensor('token_type_ids', 'int64')]), /model\.onnx: the graph has input "token_type_ids" that the onnx backend does not know how to feed/);
    refuses(() => describe_([...ids, ...past('float32', 8)]), /past_key_values\.0\.key" has shape \[batch, 8, past, 16\] but \/m\/config\.json gives \[batch, 4/);
    refuses(() => describe_([tensor('input_ids', 'int64'), ...past()]), /no "attention_mask" input/);
    refuses(() => describe_([...ids, ...past()], [tensor('logits'), ...present.slice(0, 3)]), /missing output "present\.1\.value"/);
  });

  test('a slot-cache graph: cache_key/cache_value in, new_key/new_value out; without logits_to_keep it is refused', () => {
    const cache = [0, 1].flatMap((i) => ['key', 'value'].map((kv) => tensor(`cache_${kv}.${i}`, 'float32', ['batch', 4, 'slots', 16])));
    const fresh = [0, 1].flatMap((i) => ['key', 'value'].map((kv) => tensor(`new_${kv}.${i}`)));
    const inputs = [...ids, tensor('position_ids', 'int64'), tensor('logits_to_keep', 'int64'), ...cache];
    const g = describe_(inputs, [tensor('logits'), ...fresh]);
    assert.equal(g.cacheLayout, 'slots');
    assert.deepEqual(g.pastInputs, ['cache_key.0', 'cache_value.0', 'cache_key.1', 'cache_value.1']);
    assert.deepEqual(g.presentOutputs, ['new_key.0', 'new_value.0', 'new_key.1', 'new_value.1']);
    assert.equal(describe_([...ids, ...past()]).cacheLayout, 'present');
    refuses(() => describe_(inputs, [tensor('logits'), ...fresh.slice(0, 3)]), /missing output "new_value\.1" \(the graph must return the new tokens' keys and values\)/);
    refuses(() => describe_(inputs.filter((m) => m.name !== 'logits_to_keep'), [tensor('logits'), ...fresh]), /a slot-cache graph needs position_ids and logits_to_keep/);
  });
});
