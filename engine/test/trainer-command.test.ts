import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { trainerPackageDir } from '../src/paths';
import { parseProjectConfig, readProjectConfig } from '../src/project/config';
import { runCli } from './support/bundled-cli';
import { accelerateConfigFile, builtinCommand, shippedAccelerateConfigs, trainerConfig } from '../src/round/trainer-command';

const config = (training: Record<string, unknown>) => parseProjectConfig('aries.json', { model: 'model', training });

describe('what a training run starts (training.launcher, accelerateConfig, lora)', () => {
  it('one process by default; accelerate launch with a shipped config by name', () => {
    const root = mkdtempSync(join(tmpdir(), 'aries-cmd-'));
    assert.deepEqual(builtinCommand(root, config({})), ['{python}', '-m', 'aries_trainer', 'dpo', '--config', '{config}']);
    assert.deepEqual(builtinCommand(root, config({ objective: 'sft', launcher: 'accelerate', accelerateConfig: 'cpu-ddp-2' })), [
      '{python}', '-m', 'accelerate.commands.launch', '--config_file', join(trainerPackageDir(), 'accelerate', 'cpu-ddp-2.yaml'), '-m', 'aries_trainer', 'sft', '--config', '{config}',
    ]);
    assert.deepEqual(builtinCommand(root, config({ launcher: 'accelerate' })).slice(0, 4), ['{python}', '-m', 'accelerate.commands.launch', '-m']);
    assert.deepEqual(shippedAccelerateConfigs(), ['cpu-ddp-2', 'deepspeed-zero3', 'fsdp', 'gpu-1', 'gpu-ddp']);
  });
  it('a config file of the project, relative to it; a missing one is a clear error', () => {
    const root = mkdtempSync(join(tmpdir(), 'aries-cmd-'));
    writeFileSync(join(root, 'mine.yaml'), 'distributed_type: MULTI_GPU\n');
    assert.equal(accelerateConfigFile(root, 'mine.yaml'), join(root, 'mine.yaml'));
    assert.throws(() => accelerateConfigFile(root, 'gpu-8'), /training.accelerateConfig is "gpu-8": no such shipped config and no file .*gpu-8.*use one of cpu-ddp-2, deepspeed-zero3, fsdp, gpu-1, gpu-ddp/s);
  });
  it('LoRA becomes the trainer\'s PEFT fields; bad values are refused with the key', () => {
    const c = config({ dpo: { beta: 0.2 }, lora: { r: 8, targetModules: ['q_proj', 'v_proj'] } });
    assert.deepEqual(trainerConfig(c, { model: 'm', dataset: 'd.jsonl', outputDir: 'o', refinementTemplate: 't.json' }), {
      model_name_or_path: 'm', dataset_path: 'd.jsonl', output_dir: 'o', refinement_template: 't.json', beta: 0.2,
      use_peft: true, lora_r: 8, lora_alpha: 16, lora_dropout: 0.05, lora_target_modules: 'q_proj,v_proj',
    });
    assert.equal(config({ lora: null }).training.lora, null);
    assert.throws(() => config({ lora: { rank: 8 } }), /unknown key training\.lora\.rank/);
    assert.throws(() => config({ lora: { r: 0 } }), /training\.lora\.r/);
    assert.throws(() => config({ launcher: 'torchrun' }), /training\.launcher/);
  });
});

describe("training.dpo / training.sft are checked against the trainer's fields when aries.json is read", () => {
  it('a misspelt or unknown field, a wrong type, a value outside its choices, a path the engine sets', () => {
    assert.throws(() => config({ dpo: { betta: 0.1 } }), /aries\.json: training\.dpo\.betta: unknown field \(did you mean "beta"\?\); see `python -m aries_trainer dpo --help`/);
    assert.throws(() => config({ sft: { learningrate: 0.1 } }), /training\.sft\.learningrate: unknown field \(did you mean "learning_rate"\?\)/);
    assert.throws(() => config({ sft: { beta: 0.1 } }), /training\.sft\.beta: unknown field/, 'beta is a DPO field, not an SFT one');
    assert.throws(() => config({ dpo: { num_train_epochs: 'two' } }), /training\.dpo\.num_train_epochs must be a number, got "two"/);
    assert.throws(() => config({ dpo: { max_steps: 2.5 } }), /training\.dpo\.max_steps must be a whole number, got 2\.5/);
    assert.throws(() => config({ dpo: { bf16: 'yes' } }), /training\.dpo\.bf16 must be true or false/);
    assert.throws(() => config({ dpo: { loss_type: 'hinge' } }), /training\.dpo\.loss_type is "hinge"; use one of sigmoid, ipo/);
    assert.throws(() => config({ dpo: { output_dir: '/tmp/x' } }), /training\.dpo\.output_dir is set by the engine for every run/);
    assert.throws(() => config({ sft: { refinement_template: 'mine.json' } }), /training\.sft\.refinement_template is set by the engine for every run.*aries\.json's refinementTemplate/s);
  });

  it('valid fields pass, and a training.command (another trainer) may use its own', () => {
    const c = config({ dpo: { beta: 0.2, loss_type: 'ipo', max_steps: 3, bf16: false, num_train_epochs: 2 }, sft: { learning_rate: 0.001 } });
    assert.equal(c.training.dpo.beta, 0.2);
    assert.equal(config({ command: ['trl', 'dpo', '--config', '{config}'], dpo: { gradient_checkpointing: true } }).training.dpo.gradient_checkpointing, true);
  });
});

describe('aries.json that is not JSON', () => {
  it('names the line and column where the parser stopped, and the CLI exits 2', () => {
    const root = mkdtempSync(join(tmpdir(), 'aries-badjson-'));
    writeFileSync(join(root, 'aries.json'), '{\n  "model": "model",\n  "generation": { "refinements" 2 }\n}\n');
    assert.throws(() => readProjectConfig(root), /aries\.json:3:33: not valid JSON \(.+\); fix the file there/);
    writeFileSync(join(root, 'aries.json'), '{\n  "model": "model",\n');
    assert.throws(() => readProjectConfig(root), /aries\.json:3:1: not valid JSON/);
    const cli = runCli(['stats', '-p', root]);
    assert.equal(cli.code, 2, cli.stderr);
    assert.match(cli.stderr, /aries\.json:3:1: not valid JSON/);
  });
});
