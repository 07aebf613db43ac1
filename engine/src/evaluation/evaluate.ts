import { badInput } from '../errors';
import { GREEDY, type GenerationBackend } from '../generation/backend';
import type { JobControl } from '../progress';
import type { Project } from '../project/project';
import { VerifierScorer } from '../score/verifier';
import { scoreSteps } from '../score/score-steps';
import { type Db, now, parseJson } from '../store/db';
import { collectTrajectories } from '../trajectory/collect';
import { countTrajectories, createTrajectories } from '../trajectory/store';
import type { EvaluationResults } from '../protocol/engine-types';
import { templateIdentity } from '../refinement/template';
export type { EvaluationResults } from '../protocol/engine-types';

export interface EvaluationSettings {
  split: string;
  /** Prompts evaluated, first by import order (0 = all). */
  limit: number;
  refinements: number;
  maxNewTokens: number;
  roundId: number | null;
  chunkSize: number;
  /** 'int8' when the onnx backend runs the model's int8 graph: another model, so its own evaluation. */
  weights?: 'int8';
}

/**
 * Held-out accuracy of a model, judged by the verifier: greedy decoding, first answer and after
 * 1..K self-refinements. Resumable like collection: an interrupted evaluation continues.
 */
export async function evaluateModel(p: Project, modelId: number, backend: GenerationBackend, s: EvaluationSettings, job: JobControl = {}): Promise<EvaluationResults> {
  const configJson = JSON.stringify({ split: s.split, limit: s.limit, refinements: s.refinements, maxNewTokens: s.maxNewTokens, ...templateIdentity(p.template), ...(s.weights ? { weights: s.weights } : {}) });
  let row = p.db.prepare('SELECT id FROM evaluations WHERE model_id = ? AND config_json = ? ORDER BY id DESC LIMIT 1').get(modelId, configJson) as { id: number } | undefined;
  // A new evaluation (or one killed before its trajectories were written) starts from the split's
  // prompts, checked before anything is written: a split with no prompts leaves nothing behind.
  const fresh = !row || countTrajectories(p.db, { kind: 'evaluation', id: row.id }) === 0;
  const ids = fresh ? (p.db.prepare(`SELECT id FROM prompts WHERE split = ? ORDER BY seq ${s.limit > 0 ? 'LIMIT ?' : ''}`).all(...(s.limit > 0 ? [s.split, s.limit] : [s.split])) as { id: string }[]).map((r) => r.id) : [];
  if (fresh && ids.length === 0) throw badInput(`no prompts in split "${s.split}" to evaluate on`, `import some with \`aries import FILE --split ${s.split}\`, or list them under prompts.${s.split} in aries.json`);
  if (!row) {
    const info = p.db
      .prepare("INSERT INTO evaluations (model_id, round_id, split, config_json, status, created_at) VALUES (?, ?, ?, ?, 'running', ?)")
      .run(modelId, s.roundId, s.split, configJson, now());
    row = { id: Number(info.lastInsertRowid) };
  }
  const owner = { kind: 'evaluation' as const, id: row.id };
  if (fresh) createTrajectories(p.db, owner, ids, modelId);
  await collectTrajectories(
    p.db,
    owner,
    backend,
    p.template,
    {
      refinements: s.refinements,
      sampling: { ...GREEDY, maxNewTokens: s.maxNewTokens, stop: [] },
      seedBase: 0,
      // Greedy decoding of the same prompt gives the same answer: a repeat is a fixed point.
      stopWhenRepeated: true,
      chunkSize: s.chunkSize,
      modelId,
    },
    job,
  );
  await scoreSteps(p.db, owner, new VerifierScorer(), job);
  const results = summarize(p.db, row.id, modelId, s.refinements);
  p.db.prepare("UPDATE evaluations SET status = 'complete', results_json = ?, finished_at = ? WHERE id = ?").run(JSON.stringify(results), now(), row.id);
  return results;
}

function summarize(db: Db, evaluationId: number, modelId: number, refinements: number): EvaluationResults {
  const rows = db
    .prepare(
      `SELECT t.id AS tid, s.idx, length(s.text) AS len, c.value FROM trajectories t
       JOIN steps s ON s.trajectory_id = t.id AND s.origin = 'model'
       LEFT JOIN scores c ON c.step_id = s.id AND c.scorer = 'verifier'
       WHERE t.evaluation_id = ? ORDER BY t.seq, s.idx`,
    )
    .all(evaluationId) as { tid: number; idx: number; len: number; value: number | null }[];
  const byTrajectory = new Map<number, { value: number; len: number }[]>();
  for (const r of rows) {
    const list = byTrajectory.get(r.tid) ?? [];
    list.push({ value: r.value ?? 0, len: r.len });
    byTrajectory.set(r.tid, list);
  }
  const n = byTrajectory.size;
  const correct = new Array<number>(refinements + 1).fill(0);
  const length = new Array<number>(refinements + 1).fill(0);
  let anyCorrect = 0;
  for (const steps of byTrajectory.values()) {
    if (steps.some((st) => st.value > 0)) anyCorrect++;
    for (let k = 0; k <= refinements; k++) {
      const step = steps[Math.min(k, steps.length - 1)];
      if (!step) continue;
      correct[k] = (correct[k] ?? 0) + step.value;
      length[k] = (length[k] ?? 0) + step.len;
    }
  }
  const rate = (x: number): number => (n ? x / n : 0);
  return { evaluationId, modelId, n, direct: rate(correct[0] ?? 0), refineAt: correct.slice(1).map(rate), meanLength: length.map(rate), anyCorrect: rate(anyCorrect) };
}

/** The newest complete held-out evaluation of a model, or null when it has none. */
export function latestEvaluation(db: Db, modelId: number): EvaluationResults | null {
  const row = db.prepare("SELECT results_json FROM evaluations WHERE model_id = ? AND status = 'complete' ORDER BY id DESC LIMIT 1").get(modelId) as { results_json: string } | undefined;
  return row ? parseJson<EvaluationResults>(row.results_json, `evaluation of model ${modelId}`) : null;
}
