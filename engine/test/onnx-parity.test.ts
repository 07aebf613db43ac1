import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Tensor, type InferenceSession } from 'onnxruntime-node';
import type { ChatMessage } from '../src/generation/backend';
import { loadDecoderSession, type DecoderGraph } from '../src/generation/onnx/decoder-graph';
import { KvForward } from '../src/generation/onnx/kv-forward';
import { isObject, readModelFolder, type ModelFolder } from '../src/generation/onnx/model-folder';
import { ModelTokenizer } from '../src/generation/onnx/tokenizer';
import { exportSlots, PYTHON, REPO_ROOT, TRAINER_DIR, tinyModel, torchUnavailable } from './support/tiny-model';

/**
 * The trainer's ONNX export, run by onnxruntime-node through the engine's own cache handling, gives
 * the logits PyTorch gives (full prompt, step-by-step with the cache, left-padded batch); the
 * tokenizer and chat template give the same ids and text in JS as in Python.
 */

const TOLERANCE = 1e-4;
const torchMissing = torchUnavailable();
const model = torchMissing ? { skip: torchMissing } : tinyModel({ needsPyTorchWeights: true });
const skip = model.skip;

interface Reference {
  logits: number[][][];
  ids: number[][];
  decoded: string[];
  rendered: string[];
}

interface ChatCase {
  template: string;
  messages: ChatMessage[];
  add_generation_prompt: boolean;
  special: Record<string, string>;
}

function torchReference(request: { model_dir: string; sequences?: number[][]; texts?: string[]; chats?: ChatCase[] }): Reference {
  const run = spawnSync(PYTHON, [join(REPO_ROOT, 'engine/test/support/torch_reference.py')], {
    input: JSON.stringify(request),
    encoding: 'utf8',
    env: { ...process.env, PYTHONPATH: TRAINER_DIR },
    maxBuffer: 256 * 1024 * 1024,
  });
  if (run.status !== 0) throw new Error(`torch_reference.py failed (exit ${run.status}):\n${run.stderr}`);
  return JSON.parse(run.stdout) as Reference;
}

function maxAbsDiff(got: Float32Array, want: readonly number[]): number {
  assert.equal(got.length, want.length, 'logits width');
  let max = 0;
  for (let i = 0; i < got.length; i++) max = Math.max(max, Math.abs(got[i]! - want[i]!));
  return max;
}

describe('onnx export parity with PyTorch', { skip }, () => {
  let folder: ModelFolder;
  let tokenizer: ModelTokenizer;
  let session: InferenceSession;
  let graph: DecoderGraph;
  let slotSession: InferenceSession;
  let slotGraph: DecoderGraph;
  let slotDir: string;
  let ref: Reference;
  // Inputs, fixed in before(); torch_reference.py runs once for all of them (importing torch is slow).
  let full: number[];
  let stepPrompt: number[];
  let stepContinuation: number[];
  let batchPrompts: number[][];
  let batchContinuations: number[][];
  let chats: ChatCase[];
  const user = (content: string) => tokenizer.encode(tokenizer.promptText(content));

  before(async () => {
    folder = readModelFolder(model.dir!);
    tokenizer = new ModelTokenizer(folder);
    ({ session, graph } = await loadDecoderSession(folder, 1));
    slotDir = mkdtempSync(join(tmpdir(), 'aries-slots-'));
    cpSync(model.dir!, slotDir, { recursive: true });
    exportSlots(slotDir);
    const slotFolder = readModelFolder(slotDir);
    assert.equal(slotFolder.modelPath, join(slotDir, 'onnx/model_slots.onnx'), 'the folder opens on its slot-cache graph');
    ({ session: slotSession, graph: slotGraph } = await loadDecoderSession(slotFolder, 1));
    assert.equal(slotGraph.cacheLayout, 'slots');
    full = [...user('12+7='), ...tokenizer.encode('12+7 is 19.')];
    stepPrompt = user('repeat: cat dog sun');
    stepContinuation = tokenizer.encode('cat dog 😀 sun');
    batchPrompts = [user('3+4='), user('repeat: red green blue moon'), user('héllo 😀 7+8=')];
    batchContinuations = ['3+4 is', ' red green', ' 15 is ok'].map((t) => tokenizer.encode(t).slice(0, 5));
    chats = chatCases(folder);
    ref = torchReference({
      model_dir: folder.dir,
      sequences: [full, [...stepPrompt, ...stepContinuation], ...batchPrompts.map((p, r) => [...p, ...batchContinuations[r]!])],
      texts: CORPUS,
      chats,
    });
  });
  after(async () => {
    await session?.release();
    await slotSession?.release();
    if (slotDir) rmSync(slotDir, { recursive: true, force: true });
  });

  test('full prompt: logits at every position', async (t) => {
    const ids = full;
    const feeds: Record<string, Tensor> = {
      input_ids: new Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]),
      attention_mask: new Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]),
      position_ids: new Tensor('int64', BigInt64Array.from(ids, (_, i) => BigInt(i)), [1, ids.length]),
    };
    for (const name of graph.pastInputs) feeds[name] = new Tensor('float32', new Float32Array(0), [1, graph.kvHeads, 0, graph.headDim]);
    const out = await session.run(feeds);
    const logits = out.logits!.data as Float32Array;
    const v = out.logits!.dims[2]!;
    let worst = 0;
    ids.forEach((_, t) => (worst = Math.max(worst, maxAbsDiff(logits.subarray(t * v, (t + 1) * v), ref.logits[0]![t]!))));
    t.diagnostic(`max |onnx - torch| = ${worst.toExponential(2)}`);
    assert.ok(worst <= TOLERANCE, `max |onnx - torch| = ${worst}`);
  });

  // The same checks for optimum's graph and for the slot-cache graph (exported in before()), whose
  // buffers grow by one column a run here, so every step copies them over.
  const graphs = [
    { name: "optimum's graph", forward: () => new KvForward(session, graph) },
    { name: 'slot-cache graph', forward: () => new KvForward(slotSession, slotGraph, { slotHeadroom: 1 }) },
  ];
  for (const g of graphs) {
    test(`${g.name}: step-by-step decoding with the cache matches a full forward pass`, async (t) => {
      const prompt = stepPrompt;
      const continuation = stepContinuation;
      const forward = g.forward();
      await forward.prefill([prompt], tokenizer.padTokenId);
      let worst = maxAbsDiff(forward.logits(0), ref.logits[1]![prompt.length - 1]!);
      for (let k = 0; k < continuation.length; k++) {
        await forward.step([continuation[k]!]);
        worst = Math.max(worst, maxAbsDiff(forward.logits(0), ref.logits[1]![prompt.length + k]!));
      }
      t.diagnostic(`max |onnx - torch| = ${worst.toExponential(2)}`);
      assert.ok(worst <= TOLERANCE, `max |onnx - torch| = ${worst}`);
    });

    test(`${g.name}: left-padded batch, then a finished row dropped from the cache, matches each row alone`, async (t) => {
      const prompts = batchPrompts;
      const continuations = batchContinuations;
      const forward = g.forward();
      await forward.prefill(prompts, tokenizer.padTokenId);
      let rows = [0, 1, 2];
      let worst = 0;
      const compare = (k: number) =>
        rows.forEach((r, i) => (worst = Math.max(worst, maxAbsDiff(forward.logits(i), ref.logits[2 + r]![prompts[r]!.length - 1 + k]!))));
      compare(0);
      for (let k = 0; k < 5; k++) {
        if (k === 2) {
          forward.keepRows([0, 2]); // row 1 "finished"
          rows = [0, 2];
        }
        await forward.step(rows.map((r) => continuations[r]![k]!));
        compare(k + 1);
      }
      t.diagnostic(`max |onnx - torch| = ${worst.toExponential(2)}`);
      assert.ok(worst <= TOLERANCE, `max |onnx - torch| = ${worst}`);
    });

    test(`${g.name}: a row started from a cached prefix, next to a row without one, then a third row merged in, matches each row alone`, async (t) => {
      const [p0, p1, p2] = batchPrompts as [number[], number[], number[]];
      const [c0, c1, c2] = batchContinuations as [number[], number[], number[]];
      const want = (r: number, at: number) => ref.logits[2 + r]![at]!;
      // Row 1's prompt and two tokens, run alone; its keys and values are kept, then used in part.
      const alone = g.forward();
      await alone.prefill([p1], tokenizer.padTokenId);
      await alone.step([c1[0]!]);
      await alone.step([c1[1]!]);
      const cache = alone.rowCache(0, [...p1, c1[0]!, c1[1]!]);
      const length = p1.length + 1;
      const forward = g.forward();
      // Row 0 has no prefix (its cache columns are a hole); row 1 runs one token after its prefix.
      await forward.prefillRows([{ ids: p0 }, { ids: [c1[1]!], prefix: { cache, length } }], tokenizer.padTokenId);
      let worst = Math.max(maxAbsDiff(forward.logits(0), want(0, p0.length - 1)), maxAbsDiff(forward.logits(1), want(1, length)));
      const next: Record<number, number> = {};
      await forward.step([c0[0]!, c1[2]!]);
      worst = Math.max(worst, maxAbsDiff(forward.logits(0), want(0, p0.length)), maxAbsDiff(forward.logits(1), want(1, p1.length + 2)));
      next[0] = 1;
      next[1] = 3;
      // Row 2 is prefilled on its own and merged into the running batch (continuous batching).
      const joining = g.forward();
      await joining.prefill([p2], tokenizer.padTokenId);
      forward.absorb(joining);
      worst = Math.max(worst, maxAbsDiff(forward.logits(2), want(2, p2.length - 1)));
      next[2] = 0;
      const prompts = [p0, p1, p2];
      const continuations = [c0, c1, c2];
      await forward.step([0, 1, 2].map((r) => continuations[r]![next[r]!]!));
      for (const r of [0, 1, 2]) {
        worst = Math.max(worst, maxAbsDiff(forward.logits(r), want(r, prompts[r]!.length + next[r]!)));
        next[r]!++;
      }
      // Row 0 leaves; the columns only it used go with it, and the others still match.
      forward.keepRows([1, 2]);
      await forward.step([1, 2].map((r) => continuations[r]![next[r]!]!));
      [1, 2].forEach((r, i) => (worst = Math.max(worst, maxAbsDiff(forward.logits(i), want(r, prompts[r]!.length + next[r]!)))));
      t.diagnostic(`max |onnx - torch| = ${worst.toExponential(2)}`);
      assert.ok(worst <= TOLERANCE, `max |onnx - torch| = ${worst}`);
    });
  }

  test('tokenizer.json: @huggingface/tokenizers gives the ids Python gives', () => {
    CORPUS.forEach((text, i) => {
      const ids = tokenizer.encode(text);
      assert.deepEqual(ids, ref.ids[i], `ids of ${JSON.stringify(text)}`);
      assert.equal(tokenizer.decode(ids), text, `JS round trip of ${JSON.stringify(text)}`);
      assert.equal(ref.decoded[i], text, `Python round trip of ${JSON.stringify(text)}`);
    });
  });

  test('chat templates: @huggingface/jinja renders what jinja2 renders', () => {
    chats.forEach((c, i) => {
      const t = new ModelTokenizer({ ...folder, chatTemplate: c.template });
      assert.equal(t.renderChat(c.messages, c.add_generation_prompt), ref.rendered[i], `case ${i}: ${JSON.stringify(c.template.slice(0, 30))}`);
    });
  });
});
const CORPUS = [
  'plain ASCII text, with punctuation!?',
  '0123456789 12+7=19 3.14159 -42',
  'héllo wörld — naïve café, ½ ≠ ∞',
  '日本語のテキスト 中文 한국어 مرحبا שלום',
  'emoji 😀👍🏽 family 👨‍👩‍👧 flag 🇫🇷',
  'e\u0301 combining, zero\u200bwidth',
  '<|user|>hi<|end|><|assistant|>ok<|end|>',
  '<|end <|end|<|en d|> |end|>',
  'line one\nline two\r\nthree\n\n\ttabbed   spaced  ',
  '',
  ' ',
  '{{ jinja }} {% raw %} \\ "quotes" \'single\'',
];

/** Every template × chat × add_generation_prompt, with the special tokens the engine passes. */
function chatCases(folder: ModelFolder): ChatCase[] {
  const special: Record<string, string> = {};
  for (const key of ['bos_token', 'eos_token', 'pad_token', 'unk_token']) {
    const v = folder.tokenizerConfig[key];
    if (typeof v === 'string') special[key] = v;
    else if (isObject(v) && typeof v.content === 'string') special[key] = v.content;
  }
  const templates = [folder.chatTemplate!, CHATML, LLAMA3_STYLE];
  const chats: ChatMessage[][] = [
    [{ role: 'user', content: '12+7=' }],
    [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'multi\nline {{ not a tag }} {% nor this %}' },
    ],
    [
      { role: 'user', content: 'What is 2+2?' },
      { role: 'assistant', content: ' 4 ' },
      { role: 'user', content: 'héllo 😀 "quoted" \\ back' },
    ],
  ];
  const cases: ChatCase[] = [];
  for (const template of templates) {
    for (const messages of chats) for (const agp of [true, false]) cases.push({ template, messages, add_generation_prompt: agp, special });
  }
  return cases;
}

/** Qwen2-style ChatML with whitespace control and a default system message. */
const CHATML = `{%- if messages[0]['role'] == 'system' %}
    {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
{%- else %}
    {{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}
{%- endif %}
{%- for message in messages %}
    {%- if message.role != 'system' %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
`;

/** Llama-3-style: trim filter, loop.index0, a variable, plain blocks relying on trim_blocks/lstrip_blocks. */
const LLAMA3_STYLE = `{% set loop_messages = messages %}
{% for message in loop_messages %}
  {% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + eos_token %}
  {% if loop.index0 == 0 %}
    {% set content = 'BEGIN ' + content %}
  {% endif %}
{{ content }}
{% endfor %}
{% if add_generation_prompt %}
{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{% endif %}`;
