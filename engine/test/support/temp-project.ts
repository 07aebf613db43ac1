import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/log';
import { closeProject, openProject, type Project } from '../../src/project/project';
import type { RoundRow } from '../../src/round/rounds';
import { createTrajectories, loadTrajectories, saveSteps } from '../../src/trajectory/store';

/** A throwaway project folder with an aries.json and a real SQLite database in it. */
export function tempProject(config: Record<string, unknown> = {}, files: Record<string, string> = {}): { project: Project; root: string; dispose: () => void } {
  const root = mkdtempSync(join(tmpdir(), 'aries-test-'));
  writeFileSync(join(root, 'aries.json'), JSON.stringify({ name: 'test', model: 'model', ...config }, null, 2));
  for (const [name, body] of Object.entries(files)) writeFileSync(join(root, name), body);
  const project = openProject(root, silentLogger);
  return {
    project,
    root,
    dispose: () => {
      closeProject(project);
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export const jsonl = (rows: unknown[]): string => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

const SAMPLING = { temperature: 0.8, topP: 1, topK: 0, maxNewTokens: 16, stop: [] };

/** Writes trajectories as a backend would have produced them: answers per prompt, step by step. */
export function writeTrajectories(t: ReturnType<typeof tempProject>, round: RoundRow, answers: Record<string, string[]>): void {
  createTrajectories(t.project.db, { kind: 'round', id: round.id }, Object.keys(answers), round.policy_model_id);
  for (const traj of loadTrajectories(t.project.db, { kind: 'round', id: round.id }, true)) {
    const texts = answers[traj.promptId] ?? [];
    saveSteps(t.project.db, texts.map((text, idx) => ({
      trajectoryId: traj.id, idx, text, promptTokens: 10, completionTokens: 5, finishReason: 'stop' as const, modelId: round.policy_model_id,
      sampling: SAMPLING, seed: idx, durationMs: 1, completes: idx === texts.length - 1 ? ('max_steps' as const) : null,
    })));
  }
}
