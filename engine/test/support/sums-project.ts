import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PYTHON, REPO_ROOT, tinyModel } from './tiny-model';

/**
 * A small real project for loop tests: the bundled model (or, where it is not built, the tiny test
 * model), two-digit sum prompts in the bundled task's wording with answers, K=2, and the real
 * trainer. Everything runs for real; sizes are kept small for speed. maxNewTokens leaves room for
 * the bundled model's worked answers ("8+9=17, 6+2+1=9 #### 97" is up to 25 tokens).
 */
export const CLI = join(REPO_ROOT, 'engine/src/cli/main.ts');

export function sumsProject(overrides: Record<string, unknown> = {}, sizes = { train: 32, heldout: 16 }): { root: string; skip?: string } {
  const model = tinyModel({ needsPyTorchWeights: true });
  if (model.skip !== undefined) return { root: '', skip: model.skip };
  const root = mkdtempSync(join(tmpdir(), 'aries-sums-'));
  cpSync(model.dir, join(root, 'model'), { recursive: true });
  let seed = 7;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const rows = (n: number, prefix: string): string =>
    Array.from({ length: n }, (_, i) => {
      const a = 10 + rand(90);
      const b = 10 + rand(90);
      return JSON.stringify({ id: `${prefix}${i}`, prompt: `Compute ${a}+${b}.`, answer: a + b });
    }).join('\n') + '\n';
  writeFileSync(join(root, 'train.jsonl'), rows(sizes.train, 't'));
  writeFileSync(join(root, 'heldout.jsonl'), rows(sizes.heldout, 'h'));
  const config = {
    name: 'sums',
    model: 'model',
    prompts: { train: ['train.jsonl'], heldout: ['heldout.jsonl'] },
    generation: { refinements: 2, batchSize: 8, maxNewTokens: 28, temperature: 1.0 },
    evaluation: { maxNewTokens: 28 },
    training: { python: PYTHON, dpo: { learning_rate: 0.0001, num_train_epochs: 1, per_device_train_batch_size: 8, rpo_alpha: 1.0, precompute_ref_log_probs: true, logging_steps: 1 } },
    ...overrides,
  };
  writeFileSync(join(root, 'aries.json'), JSON.stringify(config, null, 2));
  return { root };
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function cli(args: string[], cwd = REPO_ROOT): CliRun {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd, encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function cliAsync(args: string[]) {
  return spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
}
