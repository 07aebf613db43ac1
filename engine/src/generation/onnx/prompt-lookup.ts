/**
 * Draft tokens for speculative decoding without a draft model ("prompt lookup"): the tokens that
 * followed the latest earlier occurrence of the sequence's last few tokens. A refinement prompt
 * holds the previous answer, and a refinement mostly repeats it, so its next tokens are usually
 * right there; the model then checks a whole run of them in one forward pass.
 */

export const MAX_NGRAM = 4;
export const MIN_NGRAM = 2;

export function lookupDraft(tokens: readonly number[], maxDraft: number): number[] {
  if (maxDraft <= 0) return [];
  for (let n = Math.min(MAX_NGRAM, tokens.length - 1); n >= MIN_NGRAM; n--) {
    const tail = tokens.length - n;
    for (let i = tail - 1; i >= 0; i--) {
      let j = 0;
      while (j < n && tokens[i + j] === tokens[tail + j]) j++;
      if (j === n) return tokens.slice(i + n, Math.min(i + n + maxDraft, tokens.length));
    }
  }
  return [];
}
