import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { lookupDraft } from '../src/generation/onnx/prompt-lookup';
import { commonPrefix, PrefixCache } from '../src/generation/onnx/prefix-cache';
import type { RowCache } from '../src/generation/onnx/kv-forward';

describe('prompt lookup drafts', () => {
  test('the tokens after the latest earlier occurrence of the last n-gram, longest n-gram first, capped', () => {
    // "... 5 6 7 8 9 | 1 5 6 7" → the last 3-gram 5 6 7 occurs at 1; draft 8 9 1 (capped at 3).
    assert.deepEqual(lookupDraft([0, 5, 6, 7, 8, 9, 1, 5, 6, 7], 3), [8, 9, 1]);
    // Latest occurrence wins: 2 3 seen at 0 (→ 4) and at 4 (→ 9).
    assert.deepEqual(lookupDraft([2, 3, 4, 0, 2, 3, 9, 2, 3], 2), [9, 2]);
    // No repeated bigram: no draft; a budget of 0: no draft.
    assert.deepEqual(lookupDraft([1, 2, 3, 4], 4), []);
    assert.deepEqual(lookupDraft([1, 2, 1, 2], 0), []);
  });
});

function entry(tokens: number[]): RowCache {
  return { tokens, tensors: [new Float32Array(tokens.length)], bytes: tokens.length * 4 };
}

describe('prefix cache', () => {
  test('longest common prefix, at least minTokens, leaving one token to run', () => {
    const cache = new PrefixCache(1 << 20, 3);
    cache.add(entry([1, 2, 3, 4, 5, 6]));
    cache.add(entry([1, 2, 9, 9]));
    assert.equal(cache.lookup([1, 2, 3, 4, 7])?.length, 4);
    // The whole prompt is cached: one token is left to run.
    assert.equal(cache.lookup([1, 2, 3, 4, 5])?.length, 4);
    // Shorter than minTokens: a miss.
    assert.equal(cache.lookup([1, 2, 8, 8]), undefined);
    const s = cache.stats;
    assert.deepEqual([s.lookups, s.hits, s.reusedTokens, s.entries], [3, 2, 8, 2]);
  });

  test('an entry a new one extends is dropped; least recently used entries go past the byte budget', () => {
    const cache = new PrefixCache(40, 1);
    cache.add(entry([1, 2, 3]));
    cache.add(entry([1, 2, 3, 4, 5])); // extends the first
    assert.equal(cache.stats.entries, 1);
    cache.add(entry([7, 7, 7]));
    assert.equal(cache.lookup([1, 2, 3, 4, 5, 6])?.length, 5); // touches [1..5]
    cache.add(entry([8, 8])); // 5 + 3 + 2 tokens = 40 bytes: fits
    cache.add(entry([9])); // 44 bytes: the least recently used ([7, 7, 7]) goes
    assert.equal(cache.lookup([7, 7, 7, 0]), undefined);
    assert.equal(cache.lookup([1, 2, 3, 4, 5, 6])?.length, 5);
    assert.equal(commonPrefix([1, 2, 3], [1, 2, 4], 10), 2);
  });
});
