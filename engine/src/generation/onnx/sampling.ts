import type { SamplingParams } from '../backend';

/**
 * Choosing the next token from one sequence's logits: greedy, or temperature → top-k → top-p (the
 * order `transformers` applies them) and one draw from the request's own random stream. Each sampled
 * token consumes exactly one number from that stream, so a request's text depends only on its
 * prompt, parameters and seed — never on what else is in the batch. Everything is O(V) per token:
 * top-k and top-p use selection (quickselect partitions), not a sort of the vocabulary.
 */

/** xoshiro128** seeded through splitmix32: small, fast, and the same on every platform. */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number) {
    // Integers up to 2^53 (negative too) map to distinct states: mix both 32-bit halves.
    const lo = Number(BigInt.asUintN(32, BigInt(seed)));
    const hi = Number(BigInt.asUintN(32, BigInt(seed) >> 32n));
    let x = lo ^ Math.imul(hi, 0x9e3779b9);
    const next = (): number => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next() | 1; // never the all-zero state
  }

  /** Uniform in [0, 1). */
  next(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result / 4294967296;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

export function isGreedy(p: SamplingParams): boolean {
  return p.temperature === 0 || p.topK === 1;
}

/** Index of the largest logit (the first one on ties). */
export function argmax(logits: Float32Array): number {
  let best = 0;
  let bestValue = logits[0]!;
  for (let i = 1; i < logits.length; i++) {
    const v = logits[i]!;
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}

/** Reusable scratch; one instance serves every sequence of a batch in turn. */
export class TokenSampler {
  private weight = new Float64Array(0);
  private order = new Int32Array(0);

  /** The next token for `logits` (one sequence, length V). `rng` is only drawn from when sampling. */
  pick(logits: Float32Array, p: SamplingParams, rng: Rng): number {
    if (isGreedy(p)) return argmax(logits);
    const v = logits.length;
    if (this.weight.length < v) {
      this.weight = new Float64Array(v);
      this.order = new Int32Array(v);
    }
    const { weight, order } = this;
    for (let i = 0; i < v; i++) {
      order[i] = i;
      weight[i] = logits[i]! / p.temperature;
    }
    let n = v;
    if (p.topK > 0 && p.topK < v) {
      selectLargest(order, weight, p.topK, v);
      n = p.topK;
    }
    // softmax numerators over the candidates, in place
    let max = -Infinity;
    for (let i = 0; i < n; i++) max = Math.max(max, weight[order[i]!]!);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const id = order[i]!;
      const e = Math.exp(weight[id]! - max);
      weight[id] = e;
      total += e;
    }
    if (p.topP < 1) {
      n = nucleus(order, weight, n, p.topP * total);
      total = 0;
      for (let i = 0; i < n; i++) total += weight[order[i]!]!;
    }
    let u = rng.next() * total;
    for (let i = 0; i < n; i++) {
      const id = order[i]!;
      u -= weight[id]!;
      if (u < 0) return id;
    }
    return order[n - 1]!; // rounding left u a hair above zero
  }
}

/**
 * Rearranges order[lo, hi) by value into [greater | equal | less] around a median-of-three pivot;
 * returns [end of greater, end of equal]. Deterministic: the same input gives the same layout.
 */
function partition(order: Int32Array, value: Float64Array, lo: number, hi: number): [number, number] {
  const a = value[order[lo]!]!;
  const b = value[order[(lo + hi) >>> 1]!]!;
  const c = value[order[hi - 1]!]!;
  const pivot = Math.max(Math.min(a, b), Math.min(Math.max(a, b), c));
  let gt = lo;
  let i = lo;
  let lt = hi;
  while (i < lt) {
    const id = order[i]!;
    const x = value[id]!;
    if (x > pivot) {
      order[i] = order[gt]!;
      order[gt] = id;
      gt++;
      i++;
    } else if (x < pivot) {
      lt--;
      order[i] = order[lt]!;
      order[lt] = id;
    } else {
      i++;
    }
  }
  return [gt, lt];
}

/** Moves the k largest values' ids into order[0, k) (in no particular order). Expected O(n). */
export function selectLargest(order: Int32Array, value: Float64Array, k: number, n: number): void {
  let lo = 0;
  let hi = n;
  while (hi - lo > 1) {
    const [gt, eq] = partition(order, value, lo, hi);
    if (k < gt) hi = gt;
    else if (k <= eq) return;
    else lo = eq;
  }
}

/**
 * The smallest set of most probable candidates whose weight reaches `target` (ties at the edge all
 * kept): moves it to order[0, m) and returns m. Expected O(n).
 */
export function nucleus(order: Int32Array, weight: Float64Array, n: number, target: number): number {
  let lo = 0;
  let hi = n;
  let taken = 0; // weight of order[0, lo), all inside the set
  while (lo < hi) {
    const [gt, eq] = partition(order, weight, lo, hi);
    let greater = 0;
    for (let i = lo; i < gt; i++) greater += weight[order[i]!]!;
    if (taken + greater >= target) {
      hi = gt;
      continue;
    }
    let equal = 0;
    for (let i = gt; i < eq; i++) equal += weight[order[i]!]!;
    if (taken + greater + equal >= target) return eq;
    taken += greater + equal;
    lo = eq;
  }
  return Math.max(lo, 1);
}
