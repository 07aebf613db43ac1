import { cpSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { badInput } from '../errors';
import { bundledExampleDir } from '../paths';
import { PROJECT_FILE } from './config';

export interface InitResult {
  root: string;
  from: string;
  files: string[];
}

/** What an empty project starts with: the bundled model, no prompts yet. */
const EMPTY_CONFIG = {
  name: 'my-aries-project',
  model: 'model',
  prompts: { train: [], heldout: [] },
  generation: { backend: 'onnx', refinements: 3, temperature: 0.8, maxNewTokens: 64 },
  selection: { strategy: 'verifier', compute: ['verifier', 'rule'] },
  training: { dpo: { beta: 0.1, learning_rate: 5e-5, num_train_epochs: 2, rpo_alpha: 1.0 } },
};

/**
 * Creates a project folder: from the bundled example (its aries.json, prompts and model) or empty
 * (an aries.json and the bundled model; import prompts next). Refuses to overwrite a project.
 */
export function initProject(root: string, from: string, force: boolean): InitResult {
  if (from !== 'empty' && from !== 'arithmetic') throw badInput(`unknown example "${from}"`, 'use --example arithmetic or --empty');
  if (existsSync(join(root, PROJECT_FILE)) && !force) throw badInput(`${join(root, PROJECT_FILE)} already exists`, 'pick another folder, or pass --force to overwrite the project file');
  mkdirSync(root, { recursive: true });
  const example = bundledExampleDir();
  const files: string[] = [];
  if (!existsSync(join(root, 'model'))) {
    cpSync(join(example, 'model'), join(root, 'model'), { recursive: true });
    files.push('model/');
  }
  if (from === 'arithmetic') {
    cpSync(join(example, PROJECT_FILE), join(root, PROJECT_FILE));
    files.push(PROJECT_FILE);
    mkdirSync(join(root, 'prompts'), { recursive: true });
    for (const f of readdirSync(join(example, 'prompts'))) {
      cpSync(join(example, 'prompts', f), join(root, 'prompts', f));
      files.push(`prompts/${f}`);
    }
  } else {
    writeFileSync(join(root, PROJECT_FILE), `${JSON.stringify(EMPTY_CONFIG, null, 2)}\n`);
    files.push(PROJECT_FILE);
  }
  return { root, from, files };
}
