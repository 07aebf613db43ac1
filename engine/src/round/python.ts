import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { EngineError } from '../errors';
import { installRoot } from '../paths';

/**
 * Finding the trainer's Python: one that imports PyTorch, transformers and accelerate. Generation,
 * scoring, selection and export never need Python; only training does, and then the error says
 * how to get it. Looked for in order: training.python (aries.json or the aries.pythonPath
 * setting), ARIES_PYTHON, the project venv that `npm run setup` makes (.venv in the installation
 * root, pinned by engine/trainer/requirements.txt), then python3 and python on PATH.
 */
const found = new Map<string, string>();

/** The probe: what the trainer imports before it reads its first row. */
const PROBE = 'import torch, transformers, accelerate, sys; print(torch.__version__, transformers.__version__)';

export function venvPython(): string {
  return join(installRoot(), '.venv', 'bin', 'python');
}

export function candidatesFor(configured: string): string[] {
  if (configured) return [configured];
  const fromEnv = process.env.ARIES_PYTHON;
  if (fromEnv) return [fromEnv];
  const venv = venvPython();
  return [...(existsSync(venv) ? [venv] : []), 'python3', 'python'];
}

export function findTrainerPython(configured: string): string {
  const key = configured || process.env.ARIES_PYTHON || '';
  const cached = found.get(key);
  if (cached) return cached;
  const tried: string[] = [];
  for (const candidate of candidatesFor(configured)) {
    const probe = spawnSync(candidate, ['-c', PROBE], { encoding: 'utf8', timeout: 120_000 });
    if (probe.status === 0) {
      found.set(key, candidate);
      return candidate;
    }
    tried.push(`${candidate} (${probe.error ? probe.error.message : (probe.stderr.trim().split('\n').pop() ?? `exit ${probe.status}`)})`);
  }
  throw new EngineError(
    'TRAINER',
    `no Python with the training stack (torch, transformers, accelerate) found; tried ${tried.join('; ')}`,
    `run \`npm run setup\` in ${installRoot()} (it makes .venv from engine/trainer/requirements.txt), or pip install -r that file into a Python of yours and set training.python in aries.json, ARIES_PYTHON, or the aries.pythonPath setting`,
  );
}
