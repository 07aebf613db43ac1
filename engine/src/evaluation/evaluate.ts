import { badInput } from '../errors';
import { GREEDY, type GenerationBackend } from '../generation/backend';
import type { JobControl } from '../progress';
import type { Project } from '../project/project';
import { VerifierScorer } from '../score/verifier';
import { openScorer } from '../score/create';
import { scoreSteps } from '../score/score-steps';
import { selectByRule, type StepView } from '../selection/strategies';
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
 * 1..K self-refinements, and ARIES inference — one answer of y0..yK picked per prompt by the rule
 * (the last refinement unless its length guard trips), by the project's reward model
 * (selection.rmScorer, when it is one of scoring.scorers' rm:onnx / rm:http), and by an oracle
 * (any step right). Resumable like collection: an interrupted evaluation continues.
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
  const rm = inferenceRewardModel(p);
  if (rm) {
    const scorer = await openScorer(p, rm);
    try {
      await scoreSteps(p.db, owner, scorer, job);
    } finally {
      await scorer.close?.();
    }
  }
  const results = summarize(p.db, row.id, modelId, s.refinements, { maxLengthRatio: p.config.selection.maxLengthRatio, rm });
  p.db.prepare("UPDATE evaluations SET status = 'complete', results_json = ?, finished_at = ? WHERE id = ?").run(JSON.stringify(results), now(), row.id);
  return results;
}

/** The reward model that picks an answer at inference: selection.rmScorer when it is a reward model aries.json scores with. */
function inferenceRewardModel(p: Project): string | null {
  const name = p.config.selection.rmScorer;
  return name.startsWith('rm:') && p.config.scoring.scorers.includes(name) ? name : null;
}

interface EvaluatedStep {
  view: StepView;
  /** The verifier's judgement (1 right, 0 wrong or unjudged). */
  value: number;
  rm: number | null;
}

/** The step a reward model picks: the highest score, the later step on ties (as rm selection's chosen). */
function rmPick(steps: EvaluatedStep[]): EvaluatedStep | undefined {
  let best: EvaluatedStep | undefined;
  for (const st of steps) if (st.rm !== null && (best === undefined || st.rm >= (best.rm as number))) best = st;
  return best;
}

function summarize(db: Db, evaluationId: number, modelId: number, refinements: number, pick: { maxLengthRatio: number; rm: string | null }): EvaluationResults {
  const rows = db
    .prepare(
      `SELECT t.id AS tid, s.id AS sid, s.idx, s.text, c.value, r.value AS rm FROM trajectories t
       JOIN steps s ON s.trajectory_id = t.id AND s.origin = 'model'
       LEFT JOIN scores c ON c.step_id = s.id AND c.scorer = 'verifier'
       LEFT JOIN scores r ON r.step_id = s.id AND r.scorer = ?
       WHERE t.evaluation_id = ? ORDER BY t.seq, s.idx`,
    )
    .all(pick.rm ?? '', evaluationId) as { tid: number; sid: number; idx: number; text: string; value: number | null; rm: number | null }[];
  const byTrajectory = new Map<number, EvaluatedStep[]>();
  for (const r of rows) {
    const list = byTrajectory.get(r.tid) ?? [];
    list.push({ view: { id: r.sid, idx: r.idx, text: r.text, scores: {} }, value: r.value ?? 0, rm: r.rm });
    byTrajectory.set(r.tid, list);
  }
  const n = byTrajectory.size;
  const correct = new Array<number>(refinements + 1).fill(0);
  const length = new Array<number>(refinements + 1).fill(0);
  let anyCorrect = 0;
  let ruleCorrect = 0;
  let rmCorrect = 0;
  // At inference the rule has no verifier to guard it: the last refinement, unless the length guard skips it.
  const rule = { maxLengthRatio: pick.maxLengthRatio, ruleGuard: 'none' as const, verifierScorer: 'verifier' as const };
  for (const steps of byTrajectory.values()) {
    if (steps.some((st) => st.value > 0)) anyCorrect++;
    const outcome = selectByRule(steps.map((st) => st.view), rule);
    const ruled = outcome.status === 'pair' ? steps.find((st) => st.view.id === outcome.chosen) : steps[0];
    ruleCorrect += ruled?.value ?? 0;
    rmCorrect += rmPick(steps)?.value ?? 0;
    for (let k = 0; k <= refinements; k++) {
      const step = steps[Math.min(k, steps.length - 1)];
      if (!step) continue;
      correct[k] = (correct[k] ?? 0) + step.value;
      length[k] = (length[k] ?? 0) + step.view.text.length;
    }
  }
  const rate = (x: number): number => (n ? x / n : 0);
  return {
    evaluationId, modelId, n, direct: rate(correct[0] ?? 0), refineAt: correct.slice(1).map(rate), meanLength: length.map(rate),
    anyCorrect: rate(anyCorrect), ruleSelected: rate(ruleCorrect), ...(pick.rm ? { rmSelected: rate(rmCorrect), rmScorer: pick.rm } : {}),
  };
}

/** The newest complete held-out evaluation of a model, or null when it has none. */
export function latestEvaluation(db: Db, modelId: number): EvaluationResults | null {
  const row = db.prepare("SELECT results_json FROM evaluations WHERE model_id = ? AND status = 'complete' ORDER BY id DESC LIMIT 1").get(modelId) as { results_json: string } | undefined;
  return row ? parseJson<EvaluationResults>(row.results_json, `evaluation of model ${modelId}`) : null;
}
