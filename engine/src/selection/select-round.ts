import type { SelectionConfig, StrategyName } from '../project/config';
import type { JobControl } from '../progress';
import { type Db, now } from '../store/db';
import { refreshSelectionFlags } from '../review/flags';
import { selectPair, type StepView } from './strategies';

export interface SelectSummary {
  trajectories: number;
  byStrategy: Record<string, { pairs: number; skipped: number }>;
}

interface StepScoreRow {
  trajectory_id: number;
  step_id: number;
  idx: number;
  text: string;
  scorer: string | null;
  value: number | null;
}

/** The model's steps of every complete trajectory of a round, with their scores. */
export function roundStepViews(db: Db, roundId: number): Map<number, StepView[]> {
  const rows = db
    .prepare(
      `SELECT t.id AS trajectory_id, s.id AS step_id, s.idx, s.text, c.scorer, c.value
       FROM trajectories t JOIN steps s ON s.trajectory_id = t.id AND s.origin = 'model'
       LEFT JOIN scores c ON c.step_id = s.id
       WHERE t.round_id = ? AND t.status = 'complete' ORDER BY t.seq, s.idx`,
    )
    .all(roundId) as StepScoreRow[];
  const out = new Map<number, StepView[]>();
  for (const r of rows) {
    let steps = out.get(r.trajectory_id);
    if (!steps) out.set(r.trajectory_id, (steps = []));
    let step = steps[steps.length - 1];
    if (!step || step.id !== r.step_id) steps.push((step = { id: r.step_id, idx: r.idx, text: r.text, scores: {} }));
    if (r.scorer !== null) step.scores[r.scorer] = r.value;
  }
  return out;
}

/**
 * Runs each strategy on each complete trajectory of the round and stores the outcome (pair or
 * skip, with reason and margin). Rerunning replaces automatic selections; overrides are untouched.
 */
export function selectRound(db: Db, roundId: number, strategies: StrategyName[], cfg: SelectionConfig, job: JobControl = {}): SelectSummary {
  const views = roundStepViews(db, roundId);
  job.progress?.({ phase: 'select', done: 0, total: views.size });
  const upsert = db.prepare(
    `INSERT INTO selections (trajectory_id, strategy, status, chosen_step_id, rejected_step_id, reason, margin, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT(trajectory_id, strategy) DO UPDATE SET status = excluded.status, chosen_step_id = excluded.chosen_step_id,
       rejected_step_id = excluded.rejected_step_id, reason = excluded.reason, margin = excluded.margin, created_at = excluded.created_at`,
  );
  const summary: SelectSummary = { trajectories: views.size, byStrategy: {} };
  const t = now();
  db.transaction(() => {
    for (const strategy of strategies) {
      const counts = { pairs: 0, skipped: 0 };
      for (const [trajectoryId, steps] of views) {
        const o = selectPair(strategy, steps, cfg);
        if (o.status === 'pair') {
          upsert.run(trajectoryId, strategy, 'pair', o.chosen, o.rejected, o.reason, o.margin, t);
          counts.pairs++;
        } else {
          upsert.run(trajectoryId, strategy, 'skip', null, null, o.reason, o.margin, t);
          counts.skipped++;
        }
      }
      summary.byStrategy[strategy] = counts;
    }
    refreshSelectionFlags(db, roundId, cfg.strategy);
  })();
  job.progress?.({ phase: 'select', done: views.size, total: views.size });
  return summary;
}
