/**
 * Answers compared "after normalisation": surrounding space trimmed, runs of white space folded,
 * case folded. Used to end a trajectory when a refinement repeats the previous answer, and by the
 * rule strategy to skip pairs whose two sides are the same answer.
 */
export function normalizeAnswer(text: string): string {
  return text.trim().replace(/\s+/g, ' ').toLowerCase();
}

/** A 32-bit seed from parts, stable across runs and machines (FNV-1a). */
export function stableSeed(...parts: (string | number)[]): number {
  let h = 0x811c9dc5;
  for (const ch of parts.join('\u0000')) {
    h ^= ch.codePointAt(0) ?? 0;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}
