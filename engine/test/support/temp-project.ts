import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/log';
import { closeProject, openProject, type Project } from '../../src/project/project';

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
