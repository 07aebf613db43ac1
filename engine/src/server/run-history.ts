import { parseExportCounts } from '../export/dataset';
import { lastRunMetrics } from '../round/metrics';
import type { Db } from '../store/db';
import type { ExportEntry, TrainingRunEntry } from '../protocol/engine-types';
export type { ExportEntry, TrainingRunEntry } from '../protocol/engine-types';

/** The Exports and Training runs views: what the project has written and trained, newest first. */

export function listExports(db: Db): ExportEntry[] {
  const rows = db
    .prepare('SELECT e.id, r.idx AS round, e.path, e.sha256, e.counts_json, e.created_at FROM exports e JOIN rounds r ON r.id = e.round_id ORDER BY e.id DESC')
    .all() as { id: number; round: number; path: string; sha256: string; counts_json: string; created_at: string }[];
  return rows.map((e) => ({ id: e.id, round: e.round, path: e.path, sha256: e.sha256, counts: parseExportCounts(e.counts_json, `export ${e.id} counts`), createdAt: e.created_at }));
}

export function listTrainingRuns(db: Db): TrainingRunEntry[] {
  const rows = db
    .prepare(
      `SELECT t.id, r.idx AS round, t.status, t.log_path, t.output_dir, b.name AS base, m.name AS model, t.exit_code, t.error, t.started_at, t.finished_at
       FROM training_runs t JOIN rounds r ON r.id = t.round_id JOIN models b ON b.id = t.base_model_id LEFT JOIN models m ON m.id = t.output_model_id
       ORDER BY t.id DESC`,
    )
    .all() as {
    id: number; round: number; status: string; log_path: string; output_dir: string; base: string; model: string | null; exit_code: number | null; error: string | null;
    started_at: string; finished_at: string | null;
  }[];
  return rows.map((t) => {
    const last = lastRunMetrics(db, t.id);
    return {
      id: t.id, round: t.round, status: t.status, logPath: t.log_path, outputDir: t.output_dir, baseModel: t.base, model: t.model, exitCode: t.exit_code, error: t.error,
      startedAt: t.started_at, finishedAt: t.finished_at, steps: last?.step ?? 0, lastMetrics: last?.metrics ?? null,
    };
  });
}
