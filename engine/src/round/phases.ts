import { EngineError } from '../errors';
import { type EvaluationResults, evaluateModel } from '../evaluation/evaluate';
import { type ExportOptions, type ExportResult, exportRound } from '../export/dataset';
import { openBackend } from '../generation/create';
import { currentModel, getModel } from '../model/registry';
import type { JobControl } from '../progress';
import type { StrategyName } from '../project/config';
import type { Project } from '../project/project';
import { importPrompts, type ImportResult } from '../prompt/import';
import { projectPath } from '../project/config';
import { openScorers } from '../score/create';
import { scoreSteps } from '../score/score-steps';
import { selectRound, type SelectSummary } from '../selection/select-round';
import type { CollectSummary } from '../trajectory/collect';
import { collectRound } from './collect-round';
import { addPhaseTime, openRound, openRoundPolicy, type RoundRow, setRoundStatus, workingRound } from './rounds';
import { trainRound, type TrainResult } from './train';

/**
 * The phases of a round as the CLI and the JSON-RPC server run them. Each works on the open round
 * (the newest one that is not trained), is idempotent, and can be rerun after a crash.
 */

async function timed<T>(p: Project, round: RoundRow, phase: string, work: () => Promise<T> | T): Promise<T> {
  const started = performance.now();
  try {
    return await work();
  } finally {
    addPhaseTime(p.db, round.id, phase, (performance.now() - started) / 1000);
  }
}

/** Imports the prompt files named in aries.json (idempotent; a bad file changes nothing). */
export function importConfiguredPrompts(p: Project): ImportResult[] {
  const out: ImportResult[] = [];
  for (const [split, files] of Object.entries(p.config.prompts)) {
    for (const f of files) out.push(importPrompts(p.db, projectPath(p.root, f), split));
  }
  return out;
}

export async function generatePhase(p: Project, job: JobControl = {}): Promise<{ round: RoundRow; summary: CollectSummary }> {
  importConfiguredPrompts(p);
  // The model is opened (its folder checked) before a new round is created: a bad model changes nothing.
  const backend = await openBackend(p, getModel(p.db, openRoundPolicy(p)));
  try {
    const round = openRound(p);
    const summary = await timed(p, round, 'generate', () => collectRound(p, round.id, backend, job));
    return { round, summary };
  } finally {
    await backend.close();
  }
}

export async function scorePhase(p: Project, job: JobControl = {}): Promise<{ round: RoundRow; scored: Record<string, number> }> {
  const round = workingRound(p);
  const scorers = await openScorers(p);
  const scored: Record<string, number> = {};
  try {
    await timed(p, round, 'score', async () => {
      for (const s of scorers) scored[s.name] = (await scoreSteps(p.db, { kind: 'round', id: round.id }, s, job)).scored;
    });
  } finally {
    for (const s of scorers) await s.close?.();
  }
  if (round.status === 'collected') setRoundStatus(p.db, round.id, 'scored');
  return { round, scored };
}

export async function selectPhase(p: Project, strategies?: StrategyName[], job: JobControl = {}): Promise<{ round: RoundRow; summary: SelectSummary }> {
  const round = workingRound(p);
  const open = p.db.prepare("SELECT COUNT(*) AS n FROM trajectories WHERE round_id = ? AND status = 'open'").get(round.id) as { n: number };
  if (open.n > 0) throw new EngineError('BAD_INPUT', `round ${round.idx} still has ${open.n} unfinished trajectories`, 'run `aries generate` to finish them first');
  const summary = await timed(p, round, 'select', () => selectRound(p.db, round.id, strategies ?? p.config.selection.compute, p.config.selection, job));
  if (['collected', 'scored'].includes(round.status)) setRoundStatus(p.db, round.id, 'selected');
  return { round, summary };
}

export async function exportPhase(p: Project, options: ExportOptions = {}): Promise<{ round: RoundRow; result: ExportResult }> {
  const round = workingRound(p);
  const result = await timed(p, round, 'export', () => exportRound(p, round.id, options));
  if (result.counts.total === 0) {
    throw new EngineError('BAD_INPUT', `round ${round.idx} has no pairs to export (${result.counts.skipped} trajectories skipped)`, 'check `aries stats`: the selection strategy may skip everything; try another strategy or more prompts');
  }
  if (['collected', 'scored', 'selected'].includes(round.status)) setRoundStatus(p.db, round.id, 'exported');
  return { round, result };
}

export async function trainPhase(p: Project, job: JobControl = {}): Promise<{ round: RoundRow; result: TrainResult }> {
  const round = workingRound(p);
  if (round.status === 'trained') {
    throw new EngineError('BAD_INPUT', `round ${round.idx} is already trained`, `run \`aries generate\` to start round ${round.idx + 1} with the new model`);
  }
  const result = await timed(p, round, 'train', () => trainRound(p, round.id, job));
  return { round, result };
}

export async function evaluatePhase(p: Project, modelId: number | null, job: JobControl = {}, limit?: number): Promise<EvaluationResults> {
  importConfiguredPrompts(p); // the held-out files aries.json names, as generate does for train
  const model = modelId === null ? currentModel(p.db) : getModel(p.db, modelId);
  if (!model) throw new EngineError('NOT_FOUND', 'no current model to evaluate');
  const e = p.config.evaluation;
  const backend = await openBackend(p, model, Math.max(p.config.generation.batchSize, 1));
  try {
    return await evaluateModel(
      p,
      model.id,
      backend,
      {
        split: e.split, limit: limit ?? e.limit, refinements: e.refinements, maxNewTokens: e.maxNewTokens, roundId: model.trained_in_round_id, chunkSize: p.config.generation.batchSize,
        ...(model.backend === 'onnx' && p.config.generation.onnxWeights === 'int8' ? { weights: 'int8' as const } : {}),
      },
      job,
    );
  } finally {
    await backend.close();
  }
}
