import { type Db, parseJson } from '../store/db';

/**
 * A training run's logged metrics (training_metrics, one row per logged step): the one reader of
 * them, for the run report, the dashboard's curves and the Training runs view. Values that are not
 * numbers (a trainer may log strings) are left out.
 */
export interface LoggedStep {
  step: number;
  metrics: Record<string, number | null>;
}

const numbersOnly = (raw: Record<string, unknown> | null): Record<string, number | null> =>
  raw ? (Object.fromEntries(Object.entries(raw).filter(([, v]) => typeof v === 'number' || v === null)) as Record<string, number | null>) : {};

/** Every logged step of the run, in step order. */
export function runMetrics(db: Db, runId: number): LoggedStep[] {
  const rows = db.prepare('SELECT step, metrics_json FROM training_metrics WHERE run_id = ? ORDER BY step').all(runId) as { step: number; metrics_json: string }[];
  return rows.map((r) => ({ step: r.step, metrics: numbersOnly(parseJson<Record<string, unknown>>(r.metrics_json, `training run ${runId} metrics`)) }));
}

/** The run's last logged step, or null when it logged none. */
export function lastRunMetrics(db: Db, runId: number): LoggedStep | null {
  const r = db.prepare('SELECT step, metrics_json FROM training_metrics WHERE run_id = ? ORDER BY step DESC LIMIT 1').get(runId) as { step: number; metrics_json: string } | undefined;
  return r ? { step: r.step, metrics: numbersOnly(parseJson<Record<string, unknown>>(r.metrics_json, `training run ${runId} metrics`)) } : null;
}
