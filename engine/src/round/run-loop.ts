import { latestEvaluation } from '../evaluation/evaluate';
import { parseExportCounts } from '../export/dataset';
import { listModels } from '../model/registry';
import type { JobControl } from '../progress';
import { throwIfCancelled } from '../progress';
import type { Project } from '../project/project';
import { parseJson } from '../store/db';
import { evaluatePhase, exportPhase, generatePhase, importConfiguredPrompts, scorePhase, selectPhase, trainPhase } from './phases';
import { widenRound } from './collect-round';
import { listRounds } from './rounds';
import { lastRunMetrics } from './metrics';
import { reapStaleRuns } from './train';
import type { RoundReport, RunReport } from '../protocol/engine-types';
export type { RoundReport, RunReport } from '../protocol/engine-types';

/**
 * The whole ARIES loop: import the configured prompts, evaluate the starting model, then until
 * `target` rounds are trained: collect, score, select (again on more prompts while the round has
 * fewer than generation.minPairs pairs), export, train, evaluate. Every phase is
 * resumable, so rerunning after a crash (or a cancel) finishes the remaining work only.
 */
export async function runRounds(p: Project, target: number, job: JobControl = {}, onRoundDone?: (r: RoundReport) => void): Promise<RunReport> {
  reapStaleRuns(p.db);
  importConfiguredPrompts(p);
  const base = listModels(p.db)[0];
  if (base) await evaluatePhase(p, base.id, job);
  for (;;) {
    const trained = listRounds(p.db).filter((r) => r.status === 'trained').length;
    if (trained >= target) break;
    throwIfCancelled(job.signal, 'the run');
    for (;;) {
      const { round } = await generatePhase(p, job);
      await scorePhase(p, job);
      await selectPhase(p, undefined, job);
      // Fewer pairs than generation.minPairs: the round takes its next prompts and selects again.
      const { pairs, added } = widenRound(p, round.id);
      if (added === 0) break;
      p.log.info(`round ${round.idx}: ${pairs} pairs, fewer than generation.minPairs ${p.config.generation.minPairs}; collecting ${added} more prompts`);
    }
    await exportPhase(p);
    const { result } = await trainPhase(p, job);
    await evaluatePhase(p, result.modelId, job);
    const report = runReport(p).rounds.at(-1);
    if (report) onRoundDone?.(report);
  }
  return runReport(p);
}

/** The table, rebuilt from the store (so a rerun shows rounds done by earlier runs too). */
export function runReport(p: Project): RunReport {
  const db = p.db;
  const latestEval = (modelId: number) => latestEvaluation(db, modelId);
  const models = listModels(db);
  const base = models[0];
  const rounds: RoundReport[] = [];
  for (const r of listRounds(db).filter((x) => x.status === 'trained')) {
    const run = db.prepare("SELECT id, output_model_id, export_id FROM training_runs WHERE round_id = ? AND status = 'succeeded' ORDER BY id DESC LIMIT 1").get(r.id) as
      | { id: number; output_model_id: number; export_id: number }
      | undefined;
    if (!run) continue;
    const counts = parseExportCounts((db.prepare('SELECT counts_json FROM exports WHERE id = ?').get(run.export_id) as { counts_json: string }).counts_json, 'export counts');
    const metrics = lastRunMetrics(db, run.id)?.metrics ?? {};
    const model = models.find((m) => m.id === run.output_model_id);
    rounds.push({
      round: r.idx,
      model: model?.name ?? `model ${run.output_model_id}`,
      evaluation: latestEval(run.output_model_id),
      pairs: { direct: counts?.direct ?? 0, refine: counts?.refine ?? 0, keep: counts?.keep ?? 0 },
      trainLoss: metrics.loss ?? null,
      rewardMargin: metrics['rewards/margins'] ?? null,
      rewardAccuracy: metrics['rewards/accuracies'] ?? null,
      seconds: parseJson<Record<string, number>>(r.timings_json, `round ${r.idx} timings`) ?? {},
    });
  }
  return { base: { model: base?.name ?? '-', evaluation: base ? latestEval(base.id) : null }, rounds };
}
