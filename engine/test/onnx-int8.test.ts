import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { EngineError } from '../src/errors';
import { GREEDY, type GenerationRequest } from '../src/generation/backend';
import { OnnxBackend } from '../src/generation/onnx/backend';
import { parseProjectConfig } from '../src/project/config';
import { quantizeModel, tinyModel, torchUnavailable } from './support/tiny-model';

/**
 * int8 weights (generation.onnxWeights "int8"): `python -m aries_trainer quantize` writes
 * onnx/model_quantized.onnx with onnxruntime's dynamic quantization, and the onnx backend runs it.
 * What it costs in accuracy is a measurement (docs/benchmarks.md), so this checks that it runs,
 * is smaller, still answers in the bundled task's format, and that a missing graph is a clear error.
 */

const why = torchUnavailable();
const model = why ? { skip: why } : tinyModel({ needsPyTorchWeights: true });

describe('int8 weights in the onnx backend', { skip: model.skip, timeout: 300_000 }, () => {
  let dir: string;
  let work: string;
  let fp32: OnnxBackend;
  let int8: OnnxBackend;
  const requests: GenerationRequest[] = ['Compute 37+45.', 'Compute 12+89.', 'What is 70 plus 16?', 'Compute 58+31.', 'Compute 64+27.', 'Compute 23+19.'].map((q, i) => ({
    key: `q${i}`,
    prompt: [{ role: 'user', content: q }],
    sampling: { ...GREEDY, maxNewTokens: 28 },
  }));

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'aries-int8-'));
    dir = join(work, 'model');
    cpSync(model.dir!, dir, { recursive: true });
    quantizeModel(dir);
    fp32 = await OnnxBackend.open({ modelDir: dir, batchSize: 6, intraOpNumThreads: 1 });
    int8 = await OnnxBackend.open({ modelDir: dir, batchSize: 6, intraOpNumThreads: 1, weights: 'int8' });
  });
  after(async () => {
    await fp32?.close();
    await int8?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('the quantized graph is written beside the exported one, and is smaller', () => {
    const q = join(dir, 'onnx/model_quantized.onnx');
    assert.ok(existsSync(q));
    assert.ok(statSync(q).size < 0.5 * statSync(join(dir, 'onnx/model.onnx')).size, 'int8 weights take under half the bytes');
  });

  test('the backend runs it: greedy, deterministic, the task\'s answer format', async (t) => {
    const a = await int8.generate(requests);
    const b = await int8.generate(requests);
    assert.deepEqual(a.map((r) => r.text), b.map((r) => r.text));
    const formatted = a.filter((r) => /#### \d+/.test(r.text)).length;
    assert.ok(formatted >= requests.length - 1, `answers: ${JSON.stringify(a.map((r) => r.text))}`);
    const reference = await fp32.generate(requests);
    const same = a.filter((r, i) => r.text === reference[i]!.text).length;
    t.diagnostic(`${same}/${requests.length} greedy answers identical to fp32's`);
  });

  test('a folder without the quantized graph: a clear error naming the file and the command', async () => {
    const bare = join(work, 'bare');
    cpSync(model.dir!, bare, { recursive: true });
    rmSync(join(bare, 'onnx/model_quantized.onnx'), { force: true });
    await assert.rejects(OnnxBackend.open({ modelDir: bare, weights: 'int8' }), (err: unknown) => {
      assert.ok(err instanceof EngineError);
      assert.equal(err.code, 'BAD_INPUT');
      assert.match(err.message, /bare\/onnx\/model_quantized\.onnx: missing; generation\.onnxWeights is "int8".*aries_trainer quantize --model_name_or_path/);
      return true;
    });
  });

  test('aries.json: generation.onnxWeights is fp32 by default, int8 on request, nothing else', () => {
    const read = (generation: Record<string, unknown>) => parseProjectConfig('aries.json', { model: 'm', generation });
    assert.equal(read({}).generation.onnxWeights, 'fp32');
    assert.equal(read({ onnxWeights: 'int8' }).generation.onnxWeights, 'int8');
    assert.throws(() => read({ onnxWeights: 'int4' }), /generation\.onnxWeights/);
  });
});
