import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/log';
import { closeProject, openProject } from '../../src/project/project';
import { importPrompts } from '../../src/prompt/import';
import { openRound, setRoundStatus } from '../../src/round/rounds';
import { createTrajectories, type NewStep, saveSteps } from '../../src/trajectory/store';

/**
 * A project whose first round is already collected, with fabricated sum trajectories (y0..yK per
 * prompt, some right, some wrong), so score / select / export / train can be faulted without
 * spending time generating. The texts look like the tiny model's ("12+7 is 19."), so the real
 * trainer can train on the export. `model` is copied in when given (training needs it).
 */
export interface SyntheticOptions {
  prompts: number;
  refinements?: number;
  /** Extra characters appended to every step (bigger exports). */
  padding?: number;
  seed?: number;
  model?: string;
  config?: Record<string, unknown>;
  /** The folder name's start (mkdtemp adds six characters). */
  prefix?: string;
}

export interface SyntheticProject {
  root: string;
  db: string;
  dispose(): void;
}

export function rng(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n: number) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 8) % n;
  };
}

export function syntheticProject(options: SyntheticOptions): SyntheticProject {
  const root = mkdtempSync(join(tmpdir(), options.prefix ?? 'aries-fault-'));
  const k = options.refinements ?? 2;
  if (options.model) cpSync(options.model, join(root, 'model'), { recursive: true });
  else mkdirSync(join(root, 'model'));
  const config = { name: 'fault', model: 'model', generation: { refinements: k }, selection: { strategy: 'verifier', compute: ['verifier', 'rule'] }, ...options.config };
  writeFileSync(join(root, 'aries.json'), JSON.stringify(config, null, 2));
  const rand = rng(options.seed ?? 11);
  const pad = options.padding ? ` ${'x'.repeat(options.padding)}` : '';
  const sums = Array.from({ length: options.prompts }, (_, i) => ({ id: `p${i}`, a: rand(20), b: rand(20) }));
  writeFileSync(join(root, 'prompts.jsonl'), sums.map((s) => JSON.stringify({ id: s.id, prompt: `${s.a}+${s.b}=`, answer: s.a + s.b })).join('\n') + '\n');
  const p = openProject(root, silentLogger);
  try {
    importPrompts(p.db, join(root, 'prompts.jsonl'));
    const round = openRound(p);
    createTrajectories(p.db, { kind: 'round', id: round.id }, sums.map((s) => s.id), round.policy_model_id);
    const ids = p.db.prepare('SELECT id, prompt_id FROM trajectories WHERE round_id = ? ORDER BY seq').all(round.id) as { id: number; prompt_id: string }[];
    const steps: NewStep[] = [];
    ids.forEach((t, i) => {
      const s = sums[i]!;
      for (let idx = 0; idx <= k; idx++) {
        const answer = rand(3) === 0 ? s.a + s.b + 1 + rand(3) : s.a + s.b; // about a third wrong
        steps.push({
          trajectoryId: t.id,
          idx,
          text: `${s.a}+${s.b} is ${answer}.${pad}`,
          promptTokens: 5,
          completionTokens: 6,
          finishReason: 'stop',
          modelId: round.policy_model_id,
          sampling: { temperature: 1, topP: 1, topK: 0, maxNewTokens: 12, stop: [] },
          seed: i * 100 + idx,
          durationMs: 1,
          completes: idx === k ? 'max_steps' : null,
        });
      }
    });
    for (let i = 0; i < steps.length; i += 5000) saveSteps(p.db, steps.slice(i, i + 5000));
    setRoundStatus(p.db, round.id, 'collected');
  } finally {
    closeProject(p);
  }
  return { root, db: join(root, '.aries/aries.db'), dispose: () => rmSync(root, { recursive: true, force: true }) };
}

/** A copy of a project folder (database included), for a clean run to compare with. */
export function copyProject(root: string, suffix: string): string {
  const dest = `${root}-${suffix}`;
  cpSync(root, dest, { recursive: true });
  return dest;
}
