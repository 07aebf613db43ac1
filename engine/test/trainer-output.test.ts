import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseHfTrainerOutput } from '../src/protocol/trainer';

/** Lines as `trl dpo` (transformers' Trainer, TRL 1.13) printed them in the hf-stack test's run. */
describe("reading a Hugging Face Trainer's output (configured commands such as trl dpo)", () => {
  it('reads a logged metrics dict, nan and None included', () => {
    const line = "{'loss': 0.9949, 'grad_norm': 12.94378662109375, 'learning_rate': 1e-05, 'rewards/chosen': 0.0, 'rewards/margins': -0.00036476808600127697, 'logps/chosen': -6.487208366394043, 'x': nan, 'y': None, 'epoch': 0.17}";
    assert.deepEqual(parseHfTrainerOutput(line), {
      kind: 'metrics',
      values: { loss: 0.9949, grad_norm: 12.94378662109375, learning_rate: 1e-5, 'rewards/chosen': 0, 'rewards/margins': -0.00036476808600127697, 'logps/chosen': -6.487208366394043, x: null, y: null, epoch: 0.17 },
    });
  });
  it("reads the Trainer's progress bar, not the datasets' bars", () => {
    assert.deepEqual(parseHfTrainerOutput(' 33%|███▎      | 1/3 [00:00<00:00,  2.38it/s]'), { kind: 'progress', done: 1, total: 3 });
    assert.deepEqual(parseHfTrainerOutput('  0%|          | 0/3 [00:00<?, ?it/s]'), { kind: 'progress', done: 0, total: 3 });
    assert.deepEqual(parseHfTrainerOutput(' 50%|█████     | 5/10 [01:02<01:02, 12.40s/it]'), { kind: 'progress', done: 5, total: 10 });
    assert.equal(parseHfTrainerOutput('Tokenizing train dataset: 100%|██████████| 22/22 [00:00<00:00, 416.52 examples/s]'), null);
  });
  it('refuses anything else: strings, nested values, code', () => {
    for (const line of ["{'loss': '0.5'}", "{'loss': [1]}", "{'a': 1, __import__('os')}", '{"type": "log"}', '✅ Training completed.', "{'loss': 1e400e}", '']) {
      assert.equal(parseHfTrainerOutput(line), null, line);
    }
  });
});
