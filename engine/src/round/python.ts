import { spawnSync } from 'node:child_process';
import { EngineError } from '../errors';

/**
 * Finding a Python that can `import torch` for the trainer. Generation, scoring, selection and
 * export never need Python; only training does, and then the error says how to get it.
 */
const found = new Map<string, string>();

export function candidatesFor(configured: string): string[] {
  if (configured) return [configured];
  const fromEnv = process.env.ARIES_PYTHON;
  return fromEnv ? [fromEnv] : ['python3', '/usr/bin/python3', 'python'];
}

export function findTrainerPython(configured: string): string {
  const key = configured || process.env.ARIES_PYTHON || '';
  const cached = found.get(key);
  if (cached) return cached;
  const tried: string[] = [];
  for (const candidate of candidatesFor(configured)) {
    const probe = spawnSync(candidate, ['-c', 'import torch, sys; print(torch.__version__)'], { encoding: 'utf8', timeout: 60_000 });
    if (probe.status === 0) {
      found.set(key, candidate);
      return candidate;
    }
    tried.push(`${candidate} (${probe.error ? probe.error.message : (probe.stderr.trim().split('\n').pop() ?? `exit ${probe.status}`)})`);
  }
  throw new EngineError(
    'TRAINER',
    `no Python with PyTorch found; tried ${tried.join('; ')}`,
    'install PyTorch (Debian: apt-get install python3-torch libopenblas0-pthread; elsewhere: pip install torch) and set training.python in aries.json, ARIES_PYTHON, or the aries.pythonPath setting',
  );
}
