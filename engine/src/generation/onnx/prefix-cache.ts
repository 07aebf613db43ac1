import type { RowCache } from './kv-forward';

/**
 * Keys and values of sequences already run, kept so a later prompt that starts with the same
 * tokens skips them: refinement step k's prompt repeats the question (and, in a chat, the whole
 * previous turn) of step k-1, and prompts share their chat template and system prompt. Entries are
 * whole sequences (prompt + generated tokens); a lookup takes the longest common prefix with any of
 * them. Least recently used entries go first once the entries pass `maxBytes`; an entry that a new
 * prompt extends completely is dropped when the new one is added, since the new one holds it all.
 */

export interface PrefixHit {
  cache: RowCache;
  length: number;
}

export interface PrefixCacheStats {
  lookups: number;
  hits: number;
  /** Prompt tokens not run because a cached prefix held them. */
  reusedTokens: number;
  promptTokens: number;
  entries: number;
  bytes: number;
}

export class PrefixCache {
  /** Most recently used last. */
  private entries: RowCache[] = [];
  private bytes = 0;
  private readonly counters = { lookups: 0, hits: 0, reusedTokens: 0, promptTokens: 0 };

  constructor(
    readonly maxBytes: number,
    /** Shorter common prefixes are not worth the copy. */
    readonly minTokens = 8,
  ) {}

  get stats(): PrefixCacheStats {
    return { ...this.counters, entries: this.entries.length, bytes: this.bytes };
  }

  /** The longest cached prefix of `ids`, leaving at least one token to run (its logits are needed). */
  lookup(ids: readonly number[]): PrefixHit | undefined {
    this.counters.lookups++;
    this.counters.promptTokens += ids.length;
    const limit = ids.length - 1;
    let best: RowCache | undefined;
    let bestLength = 0;
    for (const e of this.entries) {
      const n = commonPrefix(e.tokens, ids, limit);
      if (n > bestLength) {
        best = e;
        bestLength = n;
      }
    }
    if (!best || bestLength < this.minTokens) return undefined;
    this.touch(best);
    this.counters.hits++;
    this.counters.reusedTokens += bestLength;
    return { cache: best, length: bestLength };
  }

  /** Keeps a finished sequence; entries it extends completely are dropped. */
  add(entry: RowCache): void {
    if (entry.tokens.length < this.minTokens || entry.bytes > this.maxBytes) return;
    this.entries = this.entries.filter((e) => {
      const covered = e.tokens.length <= entry.tokens.length && commonPrefix(e.tokens, entry.tokens, e.tokens.length) === e.tokens.length;
      if (covered) this.bytes -= e.bytes;
      return !covered;
    });
    this.entries.push(entry);
    this.bytes += entry.bytes;
    while (this.bytes > this.maxBytes && this.entries.length > 0) this.bytes -= this.entries.shift()!.bytes;
  }

  clear(): void {
    this.entries = [];
    this.bytes = 0;
  }

  private touch(e: RowCache): void {
    const i = this.entries.indexOf(e);
    if (i >= 0 && i < this.entries.length - 1) {
      this.entries.splice(i, 1);
      this.entries.push(e);
    }
  }
}

/** Length of the common prefix of a and b, at most `limit`. */
export function commonPrefix(a: readonly number[], b: readonly number[], limit: number): number {
  const n = Math.min(a.length, b.length, limit);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
