/**
 * Seeded inputs for the fuzz tests: every case is reproducible from (seed, case number), and a
 * failure message prints both. ARIES_FUZZ_SEED picks another seed, ARIES_FUZZ_CASES more cases.
 */
export const FUZZ_SEED = Number(process.env.ARIES_FUZZ_SEED ?? 424242);
export const FUZZ_SCALE = Number(process.env.ARIES_FUZZ_SCALE ?? 1);

export class Rand {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 1;
  }
  /** xorshift32 */
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  int(n: number): number {
    return this.next() % n;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }
  bytes(n: number, avoid: number[] = []): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) {
      let v = this.int(256);
      while (avoid.includes(v)) v = this.int(256);
      b[i] = v;
    }
    return b;
  }
}

/** Values of every JSON type, including ones that are hard on parsers and checkers. */
export function oddValues(r: Rand): unknown[] {
  return [
    null,
    true,
    false,
    0,
    -1,
    1.5,
    1e308,
    -1e308,
    2 ** 53 + 2,
    '',
    ' ',
    'text',
    'x'.repeat(10_000 + r.int(1000)),
    '\u0000\u0007\u001b[31m',
    '<script>alert(1)</script>',
    '../../../etc/passwd',
    [],
    [1, 2],
    ['a', 'b'],
    [null],
    {},
    { x: 1 },
    JSON.parse('{"__proto__": {"polluted": true}}') as unknown,
    nest(50 + r.int(50)),
  ];
}

export function nest(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { k: v };
  return v;
}
