import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { GREEDY, type GenerationRequest, type GenerationResult, type PromptInput } from '../src/generation/backend';
import { OnnxBackend } from '../src/generation/onnx/backend';
import { readModelFolder } from '../src/generation/onnx/model-folder';
import { type HfArch } from './support/hf-models';
import { PYTHON, REPO_ROOT, cachedModel, runTrainer, torchUnavailable, trainerCacheKey } from './support/tiny-model';

/**
 * A folder made by optimum's own CLI (`optimum-cli export onnx --task text-generation-with-past`,
 * the pinned venv's) of tiny random-init Llama (untied embeddings) and Qwen2 (tied embeddings,
 * q/k/v biases) checkpoints, both with grouped-query attention, a trained tokenizer.json and a
 * ChatML template: the engine's ONNX backend decodes greedily the tokens transformers' `generate`
 * decodes from the PyTorch checkpoint, chat template applied the same way, one stream and batched.
 */

const BUILDER = join(REPO_ROOT, 'engine/trainer/tests/tiny_hf.py');
const REFERENCE = join(REPO_ROOT, 'engine/test/support/hf_generate.py');
const OPTIMUM_CLI = join(dirname(PYTHON), 'optimum-cli');
const MAX_NEW = 24;
const torchMissing = torchUnavailable();

/**
 * The checkpoint (PyTorch), optimum's CLI export of it (model.onnx at the folder's top, as the CLI
 * writes it), and the trainer's export (`python -m aries_trainer export`: optimum's main_export,
 * checked against PyTorch, into checkpoint/onnx/), which is what a trained round gets.
 */
function optimumExport(arch: HfArch): { checkpoint: string; exported: string } {
  const key = trainerCacheKey(readFileSync(BUILDER), arch, 'optimum-cli', 'init 0.3', 'trainer export');
  const dir = cachedModel(`optimum-cli-${arch}-${key}`, 'exported/model.onnx', (work, env) => {
    const both = join(work, 'both');
    const checkpoint = join(both, 'checkpoint');
    execFileSync(PYTHON, [BUILDER, '--arch', arch, '--out', checkpoint, '--seed', '3', '--initializer-range', '0.3'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    execFileSync(OPTIMUM_CLI, ['export', 'onnx', '--model', checkpoint, '--task', 'text-generation-with-past', join(both, 'exported')], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    runTrainer(['export', '--model_name_or_path', checkpoint], env, `exporting the ${arch} checkpoint with the trainer`);
    return both;
  });
  return { checkpoint: join(dir, 'checkpoint'), exported: join(dir, 'exported') };
}

interface Reference {
  prompt_ids: number[][];
  new_ids: number[][];
  texts: string[];
  finished: boolean[];
}

function transformersGreedy(modelDir: string, prompts: PromptInput[]): Reference {
  const run = spawnSync(PYTHON, [REFERENCE], {
    input: JSON.stringify({ model_dir: modelDir, prompts, max_new_tokens: MAX_NEW }),
    encoding: 'utf8',
    env: { ...process.env, HF_HUB_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1' },
    maxBuffer: 64 * 1024 * 1024,
  });
  assert.equal(run.status, 0, `hf_generate.py failed:\n${run.stderr}`);
  return JSON.parse(run.stdout) as Reference;
}

const PROMPTS: PromptInput[] = [
  [{ role: 'user', content: 'Compute 37+45.' }],
  [{ role: 'user', content: 'What is 12 plus 89? Previous answer: #### 100. Check the previous answer and give a better one.' }],
  [
    { role: 'system', content: 'Answer with the sum.' },
    { role: 'user', content: 'Compute 70+16.' },
  ],
  [{ role: 'user', content: 'Compute 9+9.' }],
  [{ role: 'user', content: 'Compute 58+31. 8+1=9, the sum is' }],
];

for (const arch of ['llama', 'qwen2'] as const) {
  describe(`optimum-cli export of a tiny ${arch}: the engine's greedy tokens are transformers'`, { skip: torchMissing, timeout: 300_000 }, () => {
    let paths: { checkpoint: string; exported: string };
    let reference: Reference;
    let single: OnnxBackend;
    let batched: OnnxBackend;
    const requests: GenerationRequest[] = PROMPTS.map((prompt, i) => ({ key: `p${i}`, prompt, sampling: { ...GREEDY, maxNewTokens: MAX_NEW } }));

    before(async () => {
      paths = optimumExport(arch);
      reference = transformersGreedy(paths.checkpoint, PROMPTS);
      single = await OnnxBackend.open({ modelDir: paths.exported, batchSize: 1, intraOpNumThreads: 1 });
      batched = await OnnxBackend.open({ modelDir: paths.exported, batchSize: PROMPTS.length, intraOpNumThreads: 1 });
    });
    after(async () => {
      await single?.close();
      await batched?.close();
    });

    test('the folder is optimum\'s layout: model.onnx at the top, chat template beside it', () => {
      assert.ok(existsSync(join(paths.exported, 'model.onnx')));
      assert.equal(existsSync(join(paths.exported, 'onnx/model.onnx')), false);
      const folder = readModelFolder(paths.exported);
      assert.ok(folder.chatTemplate?.includes('<|im_start|>'), 'the ChatML template is read (chat_template.jinja or tokenizer_config.json)');
    });

    test('the prompt ids: the engine renders and tokenizes the chat as apply_chat_template does', () => {
      PROMPTS.forEach((p, i) => assert.deepEqual(single.tokenizer.encode(single.tokenizer.promptText(p)), reference.prompt_ids[i], `prompt ${i}`));
    });

    const same = (results: GenerationResult[], how: string): void => {
      results.forEach((r, i) => {
        assert.equal(r.promptTokens, reference.prompt_ids[i]!.length, `${how}, prompt ${i}: prompt tokens`);
        assert.equal(r.completionTokens, reference.new_ids[i]!.length + (reference.finished[i] ? 1 : 0), `${how}, prompt ${i}: generated tokens (eos counted)`);
        assert.equal(r.text, reference.texts[i], `${how}, prompt ${i}: text`);
        assert.equal(r.finishReason, reference.finished[i] ? 'stop' : 'length', `${how}, prompt ${i}: finish reason`);
      });
    };

    test('one stream at a time', async () => {
      same(await single.generate(requests), 'batch of 1');
    });

    test('all prompts in one left-padded batch', async () => {
      same(await batched.generate(requests), `batch of ${PROMPTS.length}`);
    });

    test("the trainer's export (what a trained round generates from) gives the same tokens as optimum-cli's", async () => {
      assert.ok(existsSync(join(paths.checkpoint, 'onnx/model.onnx')));
      const round = await OnnxBackend.open({ modelDir: paths.checkpoint, batchSize: PROMPTS.length, intraOpNumThreads: 1 });
      try {
        same(await round.generate(requests), "the trainer's export");
      } finally {
        await round.close();
      }
    });

    test('the test can fail: the reference differs between prompts (the model is not constant)', () => {
      assert.ok(new Set(reference.texts).size > 1, `texts: ${JSON.stringify(reference.texts)}`);
      assert.ok(reference.new_ids.some((ids) => ids.length > 3));
    });
  });
}
