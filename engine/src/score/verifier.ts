import type { ScoreInput, ScoreResult, Scorer } from './scorer';

import { normalizeAnswer } from '../trajectory/normalize';

/**
 * The verifier: extract the final answer and compare it with the reference.
 * Extraction order: the text after the last "####", else the last \boxed{...}, else the last
 * number in the response. Numbers compare numerically (commas, a leading "+", trailing ".0"
 * ignored; relative tolerance 1e-9); anything else compares as trimmed, case-folded text.
 * A reference may be a worked solution ending in "#### answer" or holding \boxed{answer} (GSM8K's
 * and MATH's form): its final answer is extracted the same way before the comparison.
 */
export type ExtractionMethod = 'hash' | 'boxed' | 'last-number' | 'none';

export interface Extraction {
  answer: string | null;
  method: ExtractionMethod;
}

const NUMBER = /[-+]?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?\.\d+/g;

export function extractAnswer(response: string): Extraction {
  const hash = response.lastIndexOf('####');
  if (hash >= 0) {
    const rest = response.slice(hash + 4).trim();
    const firstLine = rest.split('\n')[0]?.trim() ?? '';
    const num = firstLine.match(NUMBER);
    if (num && firstLine.startsWith(num[0])) return { answer: num[0], method: 'hash' };
    if (firstLine) return { answer: firstLine, method: 'hash' };
  }
  const boxed = lastBoxed(response);
  if (boxed !== null) return { answer: boxed, method: 'boxed' };
  const numbers = response.match(NUMBER);
  if (numbers && numbers.length > 0) return { answer: numbers[numbers.length - 1] ?? null, method: 'last-number' };
  return { answer: null, method: 'none' };
}

/** The content of the last \boxed{...}, with nested braces balanced. */
function lastBoxed(text: string): string | null {
  const start = text.lastIndexOf('\\boxed{');
  if (start < 0) return null;
  let depth = 0;
  for (let i = start + 6; i < text.length; i++) {
    if (text[i] === '{') depth++;
    else if (text[i] === '}' && --depth === 0) return text.slice(start + 7, i).trim();
  }
  return null;
}

function toNumber(text: string): number | null {
  const cleaned = text.replace(/,/g, '').replace(/^\+/, '').trim();
  if (!/^[-]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/.test(cleaned)) return null;
  const n = Number(cleaned);
  return Number.isFinite(n) ? n : null;
}

export function answersMatch(answer: string, reference: string): boolean {
  const a = toNumber(answer);
  const b = toNumber(reference);
  if (a !== null && b !== null) return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
  return answer.trim().toLowerCase() === reference.trim().toLowerCase();
}

/** A reference's final answer: after its last "####" or in its last \boxed{}, else the whole (trimmed) reference. */
export function referenceAnswer(reference: string): string {
  return isWorkedSolution(reference) ? (extractAnswer(reference).answer ?? reference.trim()) : reference.trim();
}

/** True when a reference shows its work: it marks a final answer with "####" or \boxed{}. */
export function isWorkedSolution(reference: string): boolean {
  return reference.includes('####') || reference.includes('\\boxed{');
}

export function verify(response: string, reference: string | null): ScoreResult['value'] {
  if (reference === null) return null;
  const { answer } = extractAnswer(response);
  return answer !== null && answersMatch(answer, referenceAnswer(reference)) ? 1 : 0;
}

/**
 * The solution check, 'verifier:solution': 1 when the response is the reference's worked solution
 * (compared after normalisation: surrounding space trimmed, runs of white space folded, case
 * folded), 0 when it is not, null when the reference has no worked solution (no "####" or
 * \boxed{}). A process check for tasks with one canonical way to show the work — e.g. the bundled
 * digit-by-digit sums, where the final answer alone rewards answers that are right by luck with
 * wrong work. Not for free-form solutions (GSM8K's), which can be right in many wordings.
 */
export function verifySolution(response: string, reference: string | null): ScoreResult['value'] {
  if (reference === null || !isWorkedSolution(reference)) return null;
  return normalizeAnswer(response) === normalizeAnswer(reference) ? 1 : 0;
}

export class SolutionScorer implements Scorer {
  readonly name = 'verifier:solution';

  async score(inputs: ScoreInput[]): Promise<ScoreResult[]> {
    return inputs.map((i) => ({ stepId: i.stepId, value: verifySolution(i.response, i.reference), raw: { reference: i.reference } }));
  }
}

export class VerifierScorer implements Scorer {
  readonly name = 'verifier';

  async score(inputs: ScoreInput[]): Promise<ScoreResult[]> {
    return inputs.map((i) => {
      const extraction = extractAnswer(i.response);
      return { stepId: i.stepId, value: verify(i.response, i.reference), raw: { ...extraction, reference: i.reference } };
    });
  }
}
