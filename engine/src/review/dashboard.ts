import { latestEvaluation } from '../evaluation/evaluate';
import { parseExportCounts } from '../export/dataset';
import { roundPairs } from '../pair/pairs';
import type { StrategyName } from '../project/config';
import { runMetrics } from '../round/metrics';
import type { Db } from '../store/db';
import type { RoundDashboard, Dashboard } from '../protocol/engine-types';
export type { RoundDashboard, Dashboard } from '../protocol/engine-types';

const mean = (xs: number[]): number | null => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

export function dashboard(db: Db, strategy: StrategyName): Dashboard {
  const name = new Map((db.prepare('SELECT id, name FROM models').all() as { id: number; name: string }[]).map((m) => [m.id, m.name]));
  const base = db.prepare('SELECT id, name FROM models ORDER BY id LIMIT 1').get() as { id: number; name: string } | undefined;
  const rounds = db.prepare('SELECT id, idx, status, policy_model_id FROM rounds ORDER BY idx').all() as { id: number; idx: number; status: string; policy_model_id: number }[];
  return {
    base: { model: base?.name ?? '-', evaluation: base ? latestEvaluation(db, base.id) : null },
    rounds: rounds.map((r) => {
      const counts = db.prepare("SELECT COUNT(*) AS n, COUNT(override_action) AS o FROM trajectories WHERE round_id = ? AND status = 'complete'").get(r.id) as { n: number; o: number };
      const selection: RoundDashboard['selection'] = {};
      for (const s of db.prepare('SELECT s.strategy, s.status, COUNT(*) AS n FROM selections s JOIN trajectories t ON t.id = s.trajectory_id WHERE t.round_id = ? GROUP BY s.strategy, s.status').all(r.id) as { strategy: string; status: string; n: number }[]) {
        const e = (selection[s.strategy] ??= { pairs: 0, skipped: 0 });
        if (s.status === 'pair') e.pairs = s.n;
        else e.skipped = s.n;
      }
      const exp = db.prepare('SELECT counts_json FROM exports WHERE round_id = ? ORDER BY id DESC LIMIT 1').get(r.id) as { counts_json: string } | undefined;
      const expCounts = exp ? parseExportCounts(exp.counts_json, 'export counts') : null;
      const run = db.prepare("SELECT id, output_model_id FROM training_runs WHERE round_id = ? ORDER BY (status = 'succeeded') DESC, id DESC LIMIT 1").get(r.id) as { id: number; output_model_id: number | null } | undefined;
      const training = run
        ? runMetrics(db, run.id).map(({ step, metrics: v }) => ({ step, loss: v.loss ?? null, margin: v['rewards/margins'] ?? null, accuracy: v['rewards/accuracies'] ?? null }))
        : [];
      const pairs = roundPairs(db, r.id, strategy).pairs;
      const byStep = (db.prepare("SELECT s.idx, AVG(length(s.text)) AS len FROM steps s JOIN trajectories t ON t.id = s.trajectory_id WHERE t.round_id = ? AND s.origin = 'model' GROUP BY s.idx ORDER BY s.idx").all(r.id) as { idx: number; len: number }[]);
      const steps: (number | null)[] = [];
      for (const s of byStep) steps[s.idx] = s.len;
      return {
        round: r.idx,
        status: r.status,
        policyModel: name.get(r.policy_model_id) ?? String(r.policy_model_id),
        trainedModel: run?.output_model_id ? (name.get(run.output_model_id) ?? null) : null,
        evaluation: run?.output_model_id ? latestEvaluation(db, run.output_model_id) : null,
        trajectories: counts.n,
        overridden: counts.o,
        overrideRate: counts.n ? counts.o / counts.n : null,
        selection,
        exported: expCounts ? { direct: expCounts.direct, refine: expCounts.refine, keep: expCounts.keep, byStrategy: expCounts.byStrategy } : null,
        lengths: { chosen: mean(pairs.map((p) => p.chosen.text.length)), rejected: mean(pairs.map((p) => p.rejected.text.length)), byStep: Array.from(steps, (x) => x ?? null) },
        training,
      };
    }),
  };
}
