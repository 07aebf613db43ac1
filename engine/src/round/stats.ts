import { listModels } from '../model/registry';
import type { Project } from '../project/project';
import { schemaVersion } from '../store/db';
import { listRounds } from './rounds';
import type { ProjectStats } from '../protocol/engine-types';
export type { ProjectStats } from '../protocol/engine-types';

export function projectStats(p: Project, check: boolean): ProjectStats {
  const db = p.db;
  const count = (sql: string, ...args: unknown[]): number => (db.prepare(sql).get(...args) as { n: number }).n;
  const prompts: Record<string, number> = {};
  for (const r of db.prepare('SELECT split, COUNT(*) AS n FROM prompts GROUP BY split').all() as { split: string; n: number }[]) prompts[r.split] = r.n;
  const selections: Record<string, Record<string, number>> = {};
  for (const r of db.prepare('SELECT strategy, status, COUNT(*) AS n FROM selections GROUP BY strategy, status').all() as { strategy: string; status: string; n: number }[]) {
    (selections[r.strategy] ??= {})[r.status] = r.n;
  }
  const trainingRuns: Record<string, number> = {};
  for (const r of db.prepare('SELECT status, COUNT(*) AS n FROM training_runs GROUP BY status').all() as { status: string; n: number }[]) trainingRuns[r.status] = r.n;
  const roundIdx = new Map(listRounds(db).map((r) => [r.id, r.idx]));
  const stats: ProjectStats = {
    project: p.root,
    database: db.name,
    schemaVersion: schemaVersion(db),
    prompts,
    rounds: listRounds(db).map((r) => ({
      round: r.idx,
      status: r.status,
      trajectories: count('SELECT COUNT(*) AS n FROM trajectories WHERE round_id = ?', r.id),
      steps: count('SELECT COUNT(*) AS n FROM steps s JOIN trajectories t ON t.id = s.trajectory_id WHERE t.round_id = ?', r.id),
      overrides: count('SELECT COUNT(*) AS n FROM overrides o JOIN trajectories t ON t.id = o.trajectory_id WHERE t.round_id = ? AND o.undone_at IS NULL', r.id),
      error: r.error,
    })),
    selections,
    models: listModels(db).map((m) => ({ id: m.id, name: m.name, parent: m.parent_model_id, round: m.trained_in_round_id === null ? null : (roundIdx.get(m.trained_in_round_id) ?? null), current: m.is_current === 1, path: m.path })),
    exports: count('SELECT COUNT(*) AS n FROM exports'),
    trainingRuns,
  };
  if (check) stats.integrity = (db.pragma('integrity_check', { simple: true }) as string) ?? 'unknown';
  return stats;
}
