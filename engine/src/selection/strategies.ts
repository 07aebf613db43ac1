import type { SelectionConfig, StrategyName } from '../project/config';
import { normalizeAnswer } from '../trajectory/normalize';

/** A step as the strategies see it: position, text and the scores it has. */
export interface StepView {
  id: number;
  idx: number;
  text: string;
  scores: Record<string, number | null>;
}

export type SelectionOutcome =
  | { status: 'pair'; chosen: number; rejected: number; reason: string; margin: number | null }
  | { status: 'skip'; reason: string; margin: number | null };

const skip = (reason: string, margin: number | null = null): SelectionOutcome => ({ status: 'skip', reason, margin });

/**
 * rm: chosen = highest score, rejected = lowest; ties go to the later step for chosen and the
 * earlier one for rejected (a refinement that is as good as the first answer is not progress).
 * Skipped when fewer than two steps are scored or best - worst ≤ minMargin.
 */
export function selectByScore(steps: StepView[], scorer: string, minMargin: number): SelectionOutcome {
  const scored = steps.filter((s) => typeof s.scores[scorer] === 'number');
  if (scored.length < 2) return skip(`fewer than two steps have a "${scorer}" score`);
  let best = scored[0] as StepView;
  let worst = scored[0] as StepView;
  for (const s of scored) {
    const v = s.scores[scorer] as number;
    if (v >= (best.scores[scorer] as number)) best = s;
    if (v < (worst.scores[scorer] as number)) worst = s;
  }
  const margin = (best.scores[scorer] as number) - (worst.scores[scorer] as number);
  if (margin <= minMargin) return skip(`tie: best and worst "${scorer}" scores differ by ${round(margin)} ≤ ${minMargin}`, margin);
  return { status: 'pair', chosen: best.id, rejected: worst.id, reason: `highest "${scorer}" (step ${best.idx}) over lowest (step ${worst.idx})`, margin };
}

/**
 * rule (ARIES rule-based selection as implemented here): chosen = the last refinement, rejected =
 * the first answer. Guards: skip when there is no refinement, when the two are the same answer
 * after normalisation, when the longer is more than maxLengthRatio times the shorter (length
 * bias), and, with ruleGuard "verifier", when the verifier (cfg.verifierScorer) says the refinement
 * is wrong and the first answer right.
 */
export function selectByRule(steps: StepView[], cfg: Pick<SelectionConfig, 'maxLengthRatio' | 'ruleGuard' | 'verifierScorer'>): SelectionOutcome {
  if (steps.length < 2) return skip('no refinement: the trajectory has one step');
  const first = steps[0] as StepView;
  const last = steps[steps.length - 1] as StepView;
  if (normalizeAnswer(first.text) === normalizeAnswer(last.text)) return skip(`the last refinement (step ${last.idx}) repeats the first answer`);
  const lengths = [first.text.trim().length, last.text.trim().length];
  const ratio = Math.max(...lengths) / Math.max(1, Math.min(...lengths));
  if (ratio > cfg.maxLengthRatio) return skip(`length ratio ${round(ratio)} > ${cfg.maxLengthRatio} (length-bias guard)`);
  const vFirst = first.scores[cfg.verifierScorer];
  const vLast = last.scores[cfg.verifierScorer];
  const margin = typeof vFirst === 'number' && typeof vLast === 'number' ? vLast - vFirst : null;
  if (cfg.ruleGuard === 'verifier' && vLast === 0 && vFirst === 1) return skip('the verifier says the refinement is wrong and the first answer right', margin);
  return { status: 'pair', chosen: last.id, rejected: first.id, reason: `last refinement (step ${last.idx}) over first answer`, margin };
}

/**
 * verifier: the latest correct step over the earliest incorrect one, as judged by `scorer`
 * ('verifier': the final answer; 'verifier:solution': the whole worked solution).
 */
export function selectByVerifier(steps: StepView[], scorer: SelectionConfig['verifierScorer'] = 'verifier'): SelectionOutcome {
  const judged = steps.filter((s) => typeof s.scores[scorer] === 'number');
  if (judged.length === 0) return skip(`no "${scorer}" scores (the prompt has no reference${scorer === 'verifier' ? '' : ' worked solution'}?)`);
  const correct = judged.filter((s) => s.scores[scorer] === 1);
  const wrong = judged.filter((s) => s.scores[scorer] === 0);
  if (correct.length === 0) return skip('no step is correct');
  if (wrong.length === 0) return skip('every step is correct');
  const chosen = correct[correct.length - 1] as StepView;
  const rejected = wrong[0] as StepView;
  return { status: 'pair', chosen: chosen.id, rejected: rejected.id, reason: `correct step ${chosen.idx} over incorrect step ${rejected.idx}`, margin: 1 };
}

export function selectPair(strategy: StrategyName, steps: StepView[], cfg: SelectionConfig): SelectionOutcome {
  switch (strategy) {
    case 'rm':
      return selectByScore(steps, cfg.rmScorer, cfg.minMargin);
    case 'rule':
      return selectByRule(steps, cfg);
    case 'verifier':
      return selectByVerifier(steps, cfg.verifierScorer);
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
