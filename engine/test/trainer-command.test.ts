import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { trainerPackageDir } from '../src/paths';
import { parseProjectConfig } from '../src/project/config';
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
    assert.deepEqual(trainerConfig(c, { model: 'm', dataset: 'd.jsonl', outputDir: 'o' }), {
      model_name_or_path: 'm', dataset_path: 'd.jsonl', output_dir: 'o', beta: 0.2, use_peft: true, lora_r: 8, lora_alpha: 16, lora_dropout: 0.05, lora_target_modules: 'q_proj,v_proj',
    });
    assert.equal(config({ lora: null }).training.lora, null);
    assert.throws(() => config({ lora: { rank: 8 } }), /unknown key training\.lora\.rank/);
    assert.throws(() => config({ lora: { r: 0 } }), /training\.lora\.r/);
    assert.throws(() => config({ launcher: 'torchrun' }), /training\.launcher/);
  });
});
