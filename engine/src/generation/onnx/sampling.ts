import type { SamplingParams } from '../backend';

/**
 * Choosing the next token from one sequence's logits: greedy, or temperature → top-k → top-p (the
 * order `transformers` applies them) and one draw from the request's own random stream. Each sampled
 * token consumes exactly one number from that stream, so a request's text depends only on its
 * prompt, parameters and seed — never on what else is in the batch. Everything is O(V) per token:
 * top-k is one pass with a size-k heap, top-p uses quickselect partitions, neither sorts the vocabulary.
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

/**
 * Tokens whose weight is below e^-30 (≈ 1e-13) of the most likely one are never sampled: even
 * 150k of them hold under 1e-8 of the mass, below the float32 noise of the logits themselves.
 */
const NEGLIGIBLE_LOG_WEIGHT = -30;

/** Reusable scratch; one instance serves every sequence of a batch in turn. */
export class TokenSampler {
  private weight = new Float64Array(0);
  private order = new Int32Array(0);
  private heapValues = new Float32Array(0);

  /** The next token for `logits` (one sequence, length V). `rng` is only drawn from when sampling. */
  pick(logits: Float32Array, p: SamplingParams, rng: Rng): number {
    if (isGreedy(p)) return argmax(logits);
    const v = logits.length;
    if (this.weight.length < v) {
      this.weight = new Float64Array(v);
      this.order = new Int32Array(v);
    }
    const { weight, order } = this;
    // Candidates in order[0, n). Temperature does not change the ranking, so top-k looks at raw logits.
    let n = v;
    if (p.topK > 0 && p.topK < v) {
      if (this.heapValues.length < p.topK) this.heapValues = new Float32Array(p.topK);
      n = largest(logits, p.topK, order, this.heapValues);
    } else {
      for (let i = 0; i < v; i++) order[i] = i;
    }
    let max = -Infinity;
    for (let i = 0; i < n; i++) max = Math.max(max, logits[order[i]!]!);
    const inverseTemperature = 1 / p.temperature;
    let total = 0;
    let kept = 0;
    for (let i = 0; i < n; i++) {
      const id = order[i]!;
      const x = (logits[id]! - max) * inverseTemperature;
      // Math.exp costs ~20 ns: a 150k vocabulary would spend milliseconds per token on tokens too
      // unlikely to matter; they are dropped from the candidates instead.
      if (x < NEGLIGIBLE_LOG_WEIGHT) continue;
      const e = Math.exp(x);
      weight[id] = e;
      total += e;
      order[kept++] = id;
    }
    n = kept;
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
 * Ids of the k largest values into ids[0, k) (heap order), ties going to the lower id; returns k.
 * One pass with a size-k min-heap: O(V) in practice, since few values beat the heap's minimum.
 */
export function largest(values: Float32Array, k: number, ids: Int32Array, heap: Float32Array): number {
  // heap[i] / ids[i] form a min-heap; "smaller" = lower value, or the same value and a higher id.
  for (let id = 0; id < k; id++) {
    heap[id] = values[id]!;
    ids[id] = id;
    let i = id;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      // The newcomer has the highest id so far: on an equal value it is the smaller one.
      if (heap[i]! > heap[parent]!) break;
      swap(heap, ids, i, parent);
      i = parent;
    }
  }
  for (let id = k; id < values.length; id++) {
    const x = values[id]!;
    if (!(x > heap[0]!)) continue;
    heap[0] = x;
    ids[0] = id;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= k) break;
      const r = l + 1;
      let c = l;
      if (r < k && (heap[r]! < heap[l]! || (heap[r] === heap[l] && ids[r]! > ids[l]!))) c = r;
      if (!(heap[c]! < heap[i]! || (heap[c] === heap[i] && ids[c]! > ids[i]!))) break;
      swap(heap, ids, i, c);
      i = c;
    }
  }
  return k;
}

function swap(heap: Float32Array, ids: Int32Array, a: number, b: number): void {
  const h = heap[a]!;
  heap[a] = heap[b]!;
  heap[b] = h;
  const i = ids[a]!;
  ids[a] = ids[b]!;
  ids[b] = i;
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
