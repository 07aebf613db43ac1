import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { PromptInput } from '../src/generation/backend';
import { EngineError } from '../src/errors';
import { parseProjectConfig } from '../src/project/config';
import { openScorers } from '../src/score/create';
import { HttpRewardScorer } from '../src/score/reward-http';
import { OnnxRewardScorer, describeRewardGraph } from '../src/score/reward-onnx';
import type { ScoreInput } from '../src/score/scorer';
import { renderScoreText } from '../src/score/score-text';
import { VerifierScorer } from '../src/score/verifier';
import { type LoopbackServer, loopbackLogit, startLoopbackServer } from './support/loopback-openai-server';
import { tempProject } from './support/temp-project';
import { PYTHON, TRAINER_DIR, tinyModel } from './support/tiny-model';
import { HELD_OUT_NUMBERS, parityRow, tinyRewardModel } from './support/tiny-reward-model';
import { hfRewardModel } from './support/hf-models';

// rm:onnx against a reward model trained here by `python -m aries_trainer rm`: logits vs PyTorch,
// held-out ranking, batch invariance, bad folders, and the scorers built from a real aries.json.

const rm = tinyRewardModel();
const skip = rm.skip;
const REFERENCE = join(__dirname, 'support/reward_reference.py');

interface Reference {
  ids: number[][];
  logits: number[][];
}

function reference(modelDir: string, pairs: { prompt: PromptInput; response: string }[]): Reference {
  const run = spawnSync(PYTHON, [REFERENCE], { input: JSON.stringify({ model_dir: modelDir, pairs }), encoding: 'utf8', env: { ...process.env, PYTHONPATH: TRAINER_DIR }, maxBuffer: 64 * 1024 * 1024 });
  if (run.status !== 0) throw new Error(`reward_reference.py failed (exit ${run.status}): ${run.stderr}`);
  return JSON.parse(run.stdout) as Reference;
}

const step = (stepId: number, prompt: PromptInput, response: string): ScoreInput => ({ stepId, prompt, response, reference: null });

/** Prompts of several shapes and responses of very different lengths (padding is exercised). */
const VARIED: ScoreInput[] = [
  step(1, 'Is 13 even?', 'no'),
  step(2, [{ role: 'system', content: 'Answer yes or no.' }, { role: 'user', content: 'Is 48 even?' }], 'yes'),
  step(3, [{ role: 'user', content: 'Is 7 even?' }], 'No — seven is odd.\nIts last digit is 7, and 7 = 2·3 + 1.'),
  step(4, 'Is 100 even?', ''),
  step(5, 'Is 2 even? Explain é, ü and 漢字 too.', 'yes '.repeat(40).trim()),
  step(6, [{ role: 'user', content: 'Is 93 even?' }], 'no'),
];

const values = (results: { value: number | null }[]): number[] => results.map((r) => r.value ?? NaN);
const maxAbsDiff = (a: number[], b: number[]): number => Math.max(...a.map((x, i) => Math.abs(x - b[i]!)));

describe('OnnxRewardScorer on a trained tiny reward model', { skip }, () => {
  let dir: string;
  let scorer: OnnxRewardScorer;
  before(async () => {
    dir = rm.dir!;
    scorer = await OnnxRewardScorer.open({ modelDir: dir });
  });
  after(() => scorer?.close());

  test('ONNX logits equal PyTorch logits on the ids the trainer renders (chat template)', async (t) => {
    const ref = reference(dir, VARIED.map((s) => ({ prompt: s.prompt, response: s.response })));
    VARIED.forEach((s, i) => assert.deepEqual(scorer.tokenIds(s.prompt, s.response), ref.ids[i], `step ${s.stepId}: the engine reads other tokens than the trainer trained on`));
    const results = await scorer.score(VARIED);
    const diff = maxAbsDiff(values(results), ref.logits.map((l) => l[0]!));
    t.diagnostic(`max |onnx - torch| = ${diff.toExponential(2)} over ${VARIED.length} texts`);
    assert.ok(diff <= 1e-4, `max |onnx - torch| = ${diff}`);
    assert.deepEqual(results.map((r) => r.stepId), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(results[0]!.raw, { valueIs: 'logit', label: 0, logits: [results[0]!.value] });
  });

  test('ranks held-out chosen answers above rejected ones far more often than chance', async (t) => {
    const inputs = HELD_OUT_NUMBERS.flatMap((n, i) => {
      const row = parityRow(n);
      return [step(2 * i, row.prompt, row.chosen), step(2 * i + 1, row.prompt, row.rejected)];
    });
    const v = values(await scorer.score(inputs));
    let wins = 0;
    for (let i = 0; i < v.length; i += 2) if (v[i]! > v[i + 1]!) wins++;
    const accuracy = wins / HELD_OUT_NUMBERS.length;
    t.diagnostic(`held-out pairwise accuracy ${accuracy.toFixed(3)} (${wins}/${HELD_OUT_NUMBERS.length})`);
    assert.ok(accuracy >= 0.75, `held-out pairwise accuracy ${accuracy}`);
  });

  test('batch size, padding and input order do not change a score', async () => {
    const alone = await OnnxRewardScorer.open({ modelDir: dir, batchSize: 1 });
    const wide = await OnnxRewardScorer.open({ modelDir: dir, batchSize: 4 });
    try {
      const one = values(await alone.score(VARIED));
      const four = values(await wide.score(VARIED));
      const reversed = await scorer.score([...VARIED].reverse());
      assert.deepEqual(reversed.map((r) => r.stepId), [6, 5, 4, 3, 2, 1]);
      assert.ok(maxAbsDiff(one, four) < 1e-5, `batch 1 vs 4: ${maxAbsDiff(one, four)}`);
      assert.ok(maxAbsDiff(one, values(reversed).reverse()) < 1e-5);
    } finally {
      await alone.close();
      await wide.close();
    }
  });

  test('a text longer than max_position_embeddings is cut from the left and says so', async () => {
    const long = step(9, 'Is 4 even?', 'yes '.repeat(200));
    const ids = scorer.tokenIds(long.prompt, long.response);
    const maxPositions = (JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { max_position_embeddings: number }).max_position_embeddings;
    assert.ok(ids.length > maxPositions);
    const [r] = await scorer.score([long]);
    assert.ok(Number.isFinite(r!.value));
    assert.equal((r!.raw as { truncated: number }).truncated, ids.length - maxPositions);
  });

  test('without a chat template the text is role: content lines, as the trainer renders it', async () => {
    const plain = mkdtempSync(join(tmpdir(), 'aries-rm-plain-'));
    try {
      cpSync(dir, plain, { recursive: true });
      const configPath = join(plain, 'tokenizer_config.json');
      const config = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
      delete config.chat_template;
      writeFileSync(configPath, JSON.stringify(config));
      const s = await OnnxRewardScorer.open({ modelDir: plain });
      try {
        const ref = reference(plain, VARIED.map((x) => ({ prompt: x.prompt, response: x.response })));
        VARIED.forEach((x, i) => assert.deepEqual(s.tokenIds(x.prompt, x.response), ref.ids[i]));
        assert.deepEqual(s.tokenIds('Is 3 even?', 'no'), s.tokenIds([{ role: 'user', content: 'Is 3 even?' }], 'no'));
        assert.equal(renderScoreText('Is 3 even?', 'no'), 'user: Is 3 even?\n\nassistant: no');
        assert.ok(maxAbsDiff(values(await s.score(VARIED)), ref.logits.map((l) => l[0]!)) <= 1e-4);
      } finally {
        await s.close();
      }
    } finally {
      rmSync(plain, { recursive: true, force: true });
    }
  });

  test('cancellation is checked between batches; the scorer stays usable', async () => {
    const s = await OnnxRewardScorer.open({ modelDir: dir, batchSize: 1 });
    try {
      const stopped = new AbortController();
      stopped.abort();
      await assert.rejects(s.score(VARIED, { signal: stopped.signal }), (err: EngineError) => err.code === 'CANCELLED');
      const midway = new AbortController();
      const many = Array.from({ length: 60 }, (_, i) => step(i, `Is ${i} even?`, 'yes'));
      const running = s.score(many, { signal: midway.signal });
      setImmediate(() => midway.abort());
      await assert.rejects(running, (err: EngineError) => err.code === 'CANCELLED');
      assert.equal((await s.score([VARIED[0]!])).length, 1);
    } finally {
      await s.close();
    }
    await assert.rejects(s.score([VARIED[0]!]), /is closed/);
  });

  test('a label the model does not have is refused when it opens', async () => {
    await assert.rejects(OnnxRewardScorer.open({ modelDir: dir, label: 1 }), (err: EngineError) => err.code === 'BAD_INPUT' && /label 1 is out of range: .* gives 1 logit\(s\) per text; set label to 0\.\.0/.test(err.message));
  });
});

describe('reward model folders that cannot be scored with', { skip }, () => {
  let broken: string;
  before(() => {
    broken = mkdtempSync(join(tmpdir(), 'aries-rm-broken-'));
  });
  after(() => rmSync(broken, { recursive: true, force: true }));

  function copyWith(name: string, change: (dir: string) => void): string {
    const dir = join(broken, name);
    cpSync(rm.dir!, dir, { recursive: true });
    change(dir);
    return dir;
  }

  const refused = async (dir: string, pattern: RegExp) =>
    assert.rejects(OnnxRewardScorer.open({ modelDir: dir }), (err: EngineError) => err.code === 'BAD_INPUT' && pattern.test(err.message));

  test('a missing folder, graph, tokenizer or config names the file and what to do', async () => {
    await refused(join(broken, 'nope'), /nope: the model folder does not exist/);
    await refused(copyWith('no-graph', (d) => rmSync(join(d, 'onnx'), { recursive: true })), /no-graph\/onnx\/model\.onnx: missing.*python -m aries_trainer rm/);
    await refused(copyWith('no-tokenizer', (d) => rmSync(join(d, 'tokenizer.json'))), /no-tokenizer\/tokenizer\.json: missing/);
    await refused(copyWith('no-config', (d) => rmSync(join(d, 'config.json'))), /no-config\/config\.json: missing/);
  });

  test('a graph onnxruntime cannot load, or one whose labels disagree with config.json', async () => {
    await refused(copyWith('garbage', (d) => writeFileSync(join(d, 'onnx/model.onnx'), 'not a graph')), /garbage\/onnx\/model\.onnx: onnxruntime cannot load the graph/);
    const twoLabels = copyWith('labels', (d) => {
      const config = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8')) as Record<string, unknown>;
      writeFileSync(join(d, 'config.json'), JSON.stringify({ ...config, num_labels: 2 }));
    });
    await refused(twoLabels, /the graph gives 1 logits per text but .*config\.json says num_labels = 2/);
  });

  test("a text-generation model (the policy's decoder export) is refused with what to export instead", async (t) => {
    const policy = tinyModel();
    if (policy.dir === undefined) return t.skip(policy.skip);
    await refused(policy.dir, /this is a text-generation export \(logits per token.*not a reward model.*--task text-classification/);
  });

  test('graph signatures the scorer cannot feed or read', () => {
    const tensor = (name: string, type: 'int64' | 'int32' | 'float32' | 'float16', shape: (number | string)[]) => ({ name, isTensor: true as const, type, shape });
    const ids = tensor('input_ids', 'int64', ['batch', 'seq']);
    const mask = tensor('attention_mask', 'int64', ['batch', 'seq']);
    const logits = tensor('logits', 'float32', ['batch', 1]);
    const at = 'model.onnx';
    assert.deepEqual(describeRewardGraph([ids, mask, tensor('position_ids', 'int64', ['batch', 'seq'])], [logits], at), { modelPath: at, hasPositionIds: true, hasTokenTypeIds: false, numLabels: 1 });
    assert.equal(describeRewardGraph([ids, mask], [tensor('logits', 'float32', ['batch', 'labels'])], at).numLabels, undefined);
    const bad: [Parameters<typeof describeRewardGraph>, RegExp][] = [
      [[[ids], [logits], at], /no "attention_mask" input \(it has "input_ids"\)/],
      [[[ids, mask, tensor('pixel_values', 'float32', [1])], [logits], at], /input "pixel_values" that the scorer does not know how to feed/],
      [[[tensor('input_ids', 'int32', ['b', 's']), mask], [logits], at], /input "input_ids" is int32; the scorer feeds int64/],
      [[[ids, mask], [tensor('scores', 'float32', ['b', 1])], at], /no "logits" output \(it has "scores"\)/],
      [[[ids, mask], [tensor('logits', 'float16', ['b', 1])], at], /"logits" is float16; the scorer reads float32/],
      [[[ids, mask], [tensor('logits', 'float32', ['b'])], at], /"logits" has shape \[b\]; a reward model gives \[batch, num_labels\]/],
      [[[ids, mask], [tensor('logits', 'float32', ['b', 's', 261])], at], /text-generation export \(logits per token, shape \[b, s, 261\]\)/],
    ];
    for (const [args, pattern] of bad) assert.throws(() => describeRewardGraph(...args), pattern);
  });
});

describe('openScorers builds the scorers aries.json names', { skip }, () => {
  let server: LoopbackServer;
  before(async () => {
    server = await startLoopbackServer();
  });
  after(() => server.close());

  test('verifier, rm:onnx (onnxPath relative to the project) and rm:http, each scoring', async () => {
    const { project, root, dispose } = tempProject({
      scoring: { scorers: ['verifier', 'rm:onnx', 'rm:http'] },
      rewardModel: { onnxPath: 'models/rm', onnxBatchSize: 2, httpUrl: server.url, httpModel: 'rm', httpInput: 'text', apiKeyEnv: 'ARIES_TEST_RM_KEY' },
    });
    const scorers = await openScorers(project).catch((err: unknown) => err);
    assert.ok(scorers instanceof EngineError && /models\/rm: the model folder does not exist/.test(scorers.message), 'onnxPath resolves against the project folder');
    try {
      cpSync(rm.dir!, join(root, 'models/rm'), { recursive: true });
      const opened = await openScorers(project);
      try {
        assert.deepEqual(opened.map((s) => s.name), ['verifier', 'rm:onnx', 'rm:http']);
        assert.ok(opened[0] instanceof VerifierScorer && opened[1] instanceof OnnxRewardScorer && opened[2] instanceof HttpRewardScorer);
        const onnx = opened[1] as OnnxRewardScorer;
        assert.equal(onnx.modelDir, join(root, 'models/rm'));
        const input = step(1, 'Is 4 even?', 'yes');
        const direct = await OnnxRewardScorer.open({ modelDir: rm.dir! });
        try {
          assert.deepEqual(values(await onnx.score([input])), values(await direct.score([input])));
        } finally {
          await direct.close();
        }
        const [viaHttp] = await opened[2]!.score([input]);
        assert.deepEqual((server.requests[0]!.body as { input: string[] }).input, [renderScoreText(input.prompt, input.response)]);
        assert.ok(Math.abs(viaHttp!.value! - loopbackLogit(renderScoreText(input.prompt, input.response))) < 1e-9);
      } finally {
        for (const s of opened) await s.close?.();
      }
    } finally {
      dispose();
    }
  });

  test('a reward-model scorer that is named but not configured, or an unknown name, is a clear error', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ scoring: { scorers: ['rm:onnx'] } }, /aries\.json: scoring\.scorers has rm:onnx but rewardModel\.onnxPath is empty; set it to a folder with onnx\/model\.onnx/],
      [{ scoring: { scorers: ['rm:http'] } }, /scoring\.scorers has rm:http but rewardModel\.httpUrl is empty; set it to the reward server's root/],
      [{ scoring: { scorers: ['rm:http'] }, rewardModel: { httpUrl: 'http://127.0.0.1:1' } }, /rm:http but rewardModel\.httpModel is empty/],
      [{ scoring: { scorers: ['verifier', 'rm:typo'] } }, /unknown scorer "rm:typo"; use "verifier", "verifier:solution", "rm:onnx", "rm:http"/],
    ];
    for (const [config, pattern] of cases) {
      const { project, dispose } = tempProject(config);
      try {
        await assert.rejects(openScorers(project), (err: EngineError) => err.code === 'BAD_INPUT' && pattern.test(err.message));
      } finally {
        dispose();
      }
    }
  });

  test('rewardModel keys are checked when aries.json is read', () => {
    const parse = (rewardModel: Record<string, unknown>) => parseProjectConfig('aries.json', { model: 'm', rewardModel });
    const rmConfig = parse({}).rewardModel;
    assert.deepEqual(
      { onnxLabel: rmConfig.onnxLabel, onnxBatchSize: rmConfig.onnxBatchSize, httpInput: rmConfig.httpInput, httpLabel: rmConfig.httpLabel, apiKeyEnv: rmConfig.apiKeyEnv },
      { onnxLabel: null, onnxBatchSize: 8, httpInput: 'messages', httpLabel: null, apiKeyEnv: 'OPENAI_API_KEY' },
    );
    assert.equal(parse({ httpLabel: 1, onnxLabel: null }).rewardModel.httpLabel, 1);
    assert.throws(() => parse({ onnxLabel: 'first' }), /aries\.json: rewardModel\.onnxLabel must be an integer from 0 to .*, or null, got "first"/);
    assert.throws(() => parse({ httpInput: 'chat' }), /rewardModel\.httpInput must be one of "messages", "text", got "chat"/);
    assert.throws(() => parse({ onnxBatchSize: 0 }), /rewardModel\.onnxBatchSize must be an integer from 1 to 4096/);
    assert.throws(() => parse({ onnxpath: 'rm' }), /unknown key rewardModel\.onnxpath/);
  });
});

for (const arch of ['llama', 'qwen2'] as const) {
  describe(`rm:onnx on a Hugging Face ${arch} reward model (AutoModelForSequenceClassification, exported by optimum)`, () => {
    const hf = hfRewardModel(arch);
    let one: OnnxRewardScorer;
    let batched: OnnxRewardScorer;
    before(async () => {
      if (hf.skip) return;
      one = await OnnxRewardScorer.open({ modelDir: hf.dir!, batchSize: 1 });
      batched = await OnnxRewardScorer.open({ modelDir: hf.dir!, batchSize: 4 });
    });
    after(() => {
      one?.close();
      batched?.close();
    });

    test("scores equal transformers' logits to 1e-4, one text at a time and in padded batches, with the model's ChatML template", { skip: hf.skip }, async (t) => {
      const ref = reference(hf.dir!, VARIED.map((s) => ({ prompt: s.prompt, response: s.response })));
      VARIED.forEach((s, i) => assert.deepEqual(one.tokenIds(s.prompt, s.response), ref.ids[i], `step ${s.stepId}: other token ids than transformers'`));
      assert.ok(one.tokenIds(VARIED[1]!.prompt, VARIED[1]!.response).length > 0);
      const expected = ref.logits.map((l) => l[0]!);
      const single = values(await one.score(VARIED));
      const inBatches = values(await batched.score(VARIED));
      const diff = Math.max(maxAbsDiff(single, expected), maxAbsDiff(inBatches, expected));
      t.diagnostic(`${arch}: max |onnx - torch| = ${diff.toExponential(2)} over ${VARIED.length} texts (batch 1 and 4)`);
      assert.ok(diff <= 1e-4, `max |onnx - torch| = ${diff}`);
      assert.ok(new Set(expected.map((x) => x.toFixed(4))).size > 1, 'the scores differ between texts (the model is not constant)');
    });
  });
}
