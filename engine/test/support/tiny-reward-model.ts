import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ModelOrSkip, cachedModel, runTrainer, tinyTokenizerFolder, torchUnavailable, trainerCacheKey } from './tiny-model';

/**
 * A tiny reward model for the rm:onnx tests, trained with the project's own trainer
 * (`python -m aries_trainer rm`, from scratch, ~25 s) and cached under the OS temp folder, keyed
 * by a hash of the trainer's sources and this recipe.
 *
 * The task: "Is n even?" answered "yes" / "no". Which answer is right depends on the question, so
 * the reward must read both. Held-out numbers (30-39, 80-89, 130-139, ...) are never trained on;
 * they end in every digit, so what decides parity was seen in training.
 */

const ARCH = { hidden_size: 64, num_hidden_layers: 2, intermediate_size: 128 };
const RM_FLAGS = ['--learning_rate', '0.002', '--num_train_epochs', '12', '--per_device_train_batch_size', '16', '--seed', '1'];

export interface ParityRow {
  prompt: { role: 'user'; content: string }[];
  chosen: string;
  rejected: string;
}

export function parityRow(n: number): ParityRow {
  const even = n % 2 === 0;
  return { prompt: [{ role: 'user', content: `Is ${n} even?` }], chosen: even ? 'yes' : 'no', rejected: even ? 'no' : 'yes' };
}

export const isHeldOut = (n: number): boolean => Math.floor(n / 10) % 5 === 3;
const NUMBERS = Array.from({ length: 300 }, (_, n) => n);
export const HELD_OUT_NUMBERS = NUMBERS.filter(isHeldOut);

function trainingRows(): string {
  return NUMBERS.filter((n) => !isHeldOut(n))
    .map((n) => JSON.stringify({ id: `n${n}`, kind: 'direct', ...parityRow(n) }))
    .join('\n') + '\n';
}

export function tinyRewardModel(): ModelOrSkip {
  const why = torchUnavailable();
  if (why) return { skip: `cannot train the test reward model: ${why}` };
  const rows = trainingRows();
  const key = trainerCacheKey(JSON.stringify({ ARCH, RM_FLAGS }), rows);
  return {
    dir: cachedModel(`tiny-rm-${key}`, 'onnx/model.onnx', (work, env) => {
      const tokDir = tinyTokenizerFolder(work, env);
      writeFileSync(join(work, 'rows.jsonl'), rows);
      const out = join(work, 'rm');
      runTrainer(['rm', '--model_name_or_path', tokDir, '--init_from_scratch', JSON.stringify(ARCH), '--dataset_path', join(work, 'rows.jsonl'), '--output_dir', out, ...RM_FLAGS], env, 'training the test reward model');
      return out;
    }),
  };
}
