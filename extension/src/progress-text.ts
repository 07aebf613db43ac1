import type { JobProgress, RunReport } from '../../engine/src/protocol/engine';

/**
 * What the progress notification and the status bar say about a running job, from the engine's
 * aries/progress notifications. VS Code's notification bar only moves forward, so a job of many
 * phases (a full round) reports the bar per phase as text and moves the bar only within one.
 * No `vscode` import: unit-tested under plain Node.
 */

const PHASE: Record<string, { verb: string; unit: string }> = {
  import: { verb: 'Importing', unit: 'prompts' },
  generate: { verb: 'Generating', unit: 'steps' },
  score: { verb: 'Scoring', unit: 'steps' },
  select: { verb: 'Selecting', unit: 'trajectories' },
  export: { verb: 'Exporting', unit: 'pairs' },
  train: { verb: 'Training', unit: 'steps' },
  evaluate: { verb: 'Evaluating', unit: 'prompts' },
  try: { verb: 'Answering', unit: 'steps' },
};

export function fmt(n: number | null | undefined, digits = 3): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  return Math.abs(n) >= 100 ? n.toFixed(0) : Number(n.toPrecision(digits)).toString();
}

export const pct = (x: number | null | undefined): string => (x === null || x === undefined || !Number.isFinite(x) ? '–' : `${(x * 100).toFixed(1)}%`);

type RowCounts = { direct: number; refine: number; keep?: number };

/** "377 direct, 377 refine", with ", 377 keep" when there are keep rows (exports from before keep rows have no count). */
export const rowKinds = (c: RowCounts): string => `${c.direct} direct, ${c.refine} refine${c.keep ? `, ${c.keep} keep` : ''}`;
export const rowTotal = (c: RowCounts): number => c.direct + c.refine + (c.keep ?? 0);

/** Live training metrics, with the names people know from TRL. */
export function trainingMetrics(m: Record<string, number | null> | undefined | null): string {
  if (!m) return '';
  const parts: string[] = [];
  if (typeof m.loss === 'number') parts.push(`loss ${fmt(m.loss)}`);
  if (typeof m['rewards/margins'] === 'number') parts.push(`reward margin ${fmt(m['rewards/margins'])}`);
  if (typeof m['rewards/accuracies'] === 'number') parts.push(`accuracy ${pct(m['rewards/accuracies'])}`);
  return parts.join(' · ');
}

export function progressMessage(p: JobProgress): string {
  const phase = PHASE[p.phase] ?? { verb: p.phase, unit: '' };
  const counts = p.total > 0 ? `${p.done}/${p.total} ${phase.unit}`.trim() : p.done > 0 ? `${p.done} ${phase.unit}`.trim() : '';
  const metrics = p.phase === 'train' ? trainingMetrics(p.metrics) : '';
  return [`${phase.verb}${p.message ? ` (${p.message})` : ''}`, counts, metrics].filter(Boolean).join(' · ');
}

/** Turns the stream of progress events of one job into notification updates. */
export class ProgressTracker {
  private phase = '';
  private percent = 0;

  /** @param moveBar whether the job has one phase only, so the bar can show its fraction. */
  constructor(private readonly moveBar: boolean) {}

  update(p: JobProgress): { message: string; increment?: number } {
    const message = progressMessage(p);
    if (!this.moveBar || p.total <= 0) return { message };
    if (p.phase !== this.phase) {
      this.phase = p.phase;
      this.percent = 0;
    }
    const target = Math.min(100, (100 * p.done) / p.total);
    const increment = target - this.percent;
    if (increment <= 0) return { message };
    this.percent = target;
    return { message, increment };
  }
}

/** The line shown when a full round has finished: held-out accuracy before and after, pairs, training. */
export function roundSummary(report: RunReport): string {
  const last = report.rounds.at(-1);
  if (!last) return 'No round was trained.';
  const before = report.rounds.length > 1 ? report.rounds.at(-2)!.evaluation : report.base.evaluation;
  const after = last.evaluation;
  const acc = (e: typeof after): string => (e ? `direct ${pct(e.direct)}, refine@${e.refineAt.length} ${pct(e.refineAt.at(-1))}` : 'not evaluated');
  const parts = [
    `Round ${last.round} trained → ${last.model}.`,
    `Held-out: ${acc(before)} → ${acc(after)}.`,
    `Pairs: ${rowKinds(last.pairs)}.`,
  ];
  const metrics = trainingMetrics({ loss: last.trainLoss, 'rewards/margins': last.rewardMargin });
  if (metrics) parts.push(`Final ${metrics}.`);
  return parts.join(' ');
}
