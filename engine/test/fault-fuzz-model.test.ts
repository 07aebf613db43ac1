import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../src/log';
import { closeProject, openProject } from '../src/project/project';
import { importConfiguredPrompts } from '../src/round/phases';
import { runCli } from './support/bundled-cli';
import { Rand, FUZZ_SEED } from './support/fuzz';
import { dbDigest, folderDigest } from './support/store-digest';
import { tinyModel } from './support/tiny-model';

/**
 * Bad model folders met by a real `aries generate` / `aries eval`: missing files, files that are not
 * what their name says (a non-ONNX model.onnx, a cut graph, random bytes), config.json values of the
 * wrong type or shape, broken tokenizer files and chat templates. Each must exit 2 with a message
 * naming the file, and change nothing: no round created, no row written, no file added.
 */
const model = tinyModel();

type Break = (dir: string, r: Rand) => void;

const json = (dir: string, file: string, edit: (v: Record<string, unknown>) => void): void => {
  const path = join(dir, file);
  const v = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  edit(v);
  writeFileSync(path, JSON.stringify(v));
};

/** name, how to break the folder, the file the message must name. */
const CASES: [string, Break, RegExp][] = [
  ['the folder is missing', (d) => rmSync(d, { recursive: true }), /model: the model folder does not exist/],
  ['onnx/model.onnx is missing', (d) => rmSync(join(d, 'onnx'), { recursive: true }), /onnx\/model\.onnx: missing/],
  ['model.onnx is text', (d) => writeFileSync(join(d, 'onnx/model.onnx'), 'not a model'), /onnx\/model\.onnx: onnxruntime cannot load the graph/],
  ['model.onnx is cut short', (d) => truncateSync(join(d, 'onnx/model.onnx'), 1000), /onnx\/model\.onnx: onnxruntime cannot load the graph/],
  ['model.onnx is random bytes', (d, r) => writeFileSync(join(d, 'onnx/model.onnx'), r.bytes(100_000)), /onnx\/model\.onnx: onnxruntime cannot load the graph/],
  ['model.onnx is a folder', (d) => { rmSync(join(d, 'onnx/model.onnx')); mkdirSync(join(d, 'onnx/model.onnx')); }, /onnx\/model\.onnx/],
  ['config.json is missing', (d) => rmSync(join(d, 'config.json')), /config\.json: missing/],
  ['config.json is not JSON', (d) => writeFileSync(join(d, 'config.json'), '{"num_hidden_layers": '), /config\.json: not valid JSON/],
  ['config.json is a list', (d) => writeFileSync(join(d, 'config.json'), '[1, 2]'), /config\.json: must hold a JSON object/],
  ['num_hidden_layers is a string', (d) => json(d, 'config.json', (v) => (v.num_hidden_layers = String(v.num_hidden_layers))), /config\.json: "num_hidden_layers" is "\d+"; it must be a positive integer/],
  ['num_hidden_layers disagrees with the graph', (d) => json(d, 'config.json', (v) => (v.num_hidden_layers = (v.num_hidden_layers as number) + 1)), /model\.onnx: the graph has \d+ layers/],
  ['hidden_size gives a fractional head size', (d) => json(d, 'config.json', (v) => { v.hidden_size = (v.hidden_size as number) + 1; delete v.head_dim; }), /config\.json: cannot tell the key\/value shape/],
  ['num_key_value_heads disagrees with the graph', (d) => json(d, 'config.json', (v) => (v.num_key_value_heads = (v.num_attention_heads as number) * 2)), /model\.onnx|config\.json/],
  ['tokenizer.json is missing', (d) => rmSync(join(d, 'tokenizer.json')), /tokenizer\.json: missing/],
  ['tokenizer.json is a list', (d) => writeFileSync(join(d, 'tokenizer.json'), '[]'), /tokenizer\.json: must hold a JSON object/],
  ['tokenizer.json is an empty object', (d) => writeFileSync(join(d, 'tokenizer.json'), '{}'), /tokenizer\.json/],
  ['tokenizer_config.json is not JSON', (d) => writeFileSync(join(d, 'tokenizer_config.json'), '\u0000\u0001'), /tokenizer_config\.json: not valid JSON/],
  ['the chat template does not parse', (d) => json(d, 'tokenizer_config.json', (v) => (v.chat_template = '{% for m in messages %}{{ m.content }')), /chat.template|tokenizer_config\.json/],
  ['generation_config.json is not JSON', (d) => writeFileSync(join(d, 'generation_config.json'), 'nope'), /generation_config\.json: not valid JSON/],
];

describe('bad model folders: aries generate and aries eval refuse them and change nothing', { skip: model.skip, timeout: 300_000 }, () => {
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'aries-badmodel-'));
    writeFileSync(join(root, 'train.jsonl'), Array.from({ length: 8 }, (_, i) => JSON.stringify({ id: `t${i}`, prompt: `${i}+1=`, answer: i + 1 })).join('\n') + '\n');
    writeFileSync(join(root, 'heldout.jsonl'), Array.from({ length: 4 }, (_, i) => JSON.stringify({ id: `h${i}`, prompt: `${i}+2=`, answer: i + 2 })).join('\n') + '\n');
    writeFileSync(join(root, 'aries.json'), JSON.stringify({ name: 'bad-model', model: 'model', prompts: { train: ['train.jsonl'], heldout: ['heldout.jsonl'] }, generation: { refinements: 1, batchSize: 4, maxNewTokens: 4 } }));
    cpSync(model.dir!, join(root, 'model'), { recursive: true });
    const p = openProject(root, silentLogger); // prompts imported and the base model registered up front: a rerun of either changes nothing
    try {
      importConfiguredPrompts(p);
    } finally {
      closeProject(p);
    }
  });
  after(() => root && rmSync(root, { recursive: true, force: true }));

  it('every broken folder: exit 2, the file named, database and project folder unchanged', (t) => {
    const r = new Rand(FUZZ_SEED);
    const db = join(root, '.aries/aries.db');
    let runs = 0;
    for (const [name, breakIt, names] of CASES) {
      rmSync(join(root, 'model'), { recursive: true, force: true });
      cpSync(model.dir!, join(root, 'model'), { recursive: true });
      breakIt(join(root, 'model'), r);
      for (const command of name === 'the chat template does not parse' || name.startsWith('model.onnx') ? ['generate', 'eval'] : ['generate']) {
        const before = [dbDigest(db), folderDigest(root)];
        const res = runCli([command, '-p', root]);
        assert.equal(res.code, 2, `${name} (${command}): exit ${res.code}\n${res.stderr}`);
        assert.match(res.stderr, names, `${name} (${command})`);
        assert.ok(res.stderr.includes(join(root, 'model')), `${name} (${command}): the message names the model folder: ${res.stderr}`);
        assert.deepEqual([dbDigest(db), folderDigest(root)], before, `${name} (${command}): something changed`);
        runs++;
      }
    }
    t.diagnostic(`${CASES.length} broken model folders, ${runs} engine runs: exit 2 with the file named, nothing changed`);
  });
});
