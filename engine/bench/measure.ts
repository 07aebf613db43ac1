import { execFileSync } from 'node:child_process';
import { cpus, loadavg, totalmem } from 'node:os';

/**
 * Timing helpers shared by every benchmark: medians of repeated runs, the two sides of a
 * comparison interleaved (A B A B …) so a noisy neighbour slows both alike, and what the machine was.
 */

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Nearest-rank percentile, p in [0, 100]. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Runs each side `reps` times, alternating sides; returns every side's samples in run order. */
export async function interleaved<S extends Record<string, () => Promise<unknown>>>(reps: number, sides: S): Promise<{ [K in keyof S]: Awaited<ReturnType<S[K]>>[] }> {
  const names = Object.keys(sides) as (keyof S & string)[];
  const out = Object.fromEntries(names.map((n) => [n, [] as unknown[]])) as Record<keyof S, unknown[]>;
  for (let rep = 0; rep < reps; rep++) {
    // Alternate who goes first, so neither side always runs on a cache the other warmed.
    const order = rep % 2 ? [...names].reverse() : names;
    for (const name of order) out[name].push(await sides[name]!());
  }
  return out as { [K in keyof S]: Awaited<ReturnType<S[K]>>[] };
}

export async function timed<T>(fn: () => Promise<T> | T): Promise<{ ms: number; value: T }> {
  const started = performance.now();
  const value = await fn();
  return { ms: performance.now() - started, value };
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  loadBefore: number[];
}

export function machineInfo(): MachineInfo {
  const c = cpus();
  let os = `${process.platform} ${process.arch}`;
  try {
    const release = execFileSync('sh', ['-c', '. /etc/os-release && echo "$PRETTY_NAME"'], { encoding: 'utf8' }).trim();
    if (release) os = `${release} (${process.arch})`;
  } catch {
    // not Linux: keep platform/arch
  }
  return {
    cpu: c[0]?.model ?? 'unknown',
    cores: c.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os,
    node: process.version,
    loadBefore: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

export const fmt = {
  int: (x: number): string => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : String(x)),
  num: (x: number, digits = 1): string => (Number.isFinite(x) ? x.toFixed(digits) : String(x)),
  ms: (x: number): string => (x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : x >= 100 ? `${x.toFixed(0)} ms` : `${x.toFixed(1)} ms`),
  ratio: (x: number): string => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '–'),
};
