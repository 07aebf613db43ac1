import { cancelled } from '../../errors';

/**
 * When and how long to wait before trying an HTTP request again. Every wait is bounded: the
 * backoff by `backoffMaxMs`, a server's Retry-After by `maxRetryWaitMs` (asking for more fails
 * the request instead of silently waiting less than the server asked).
 */
export interface RetryPolicy {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  /** The first backoff; it doubles per attempt up to `backoffMaxMs`, with jitter. */
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** The longest Retry-After the client will honour. */
  maxRetryWaitMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 5, backoffBaseMs: 500, backoffMaxMs: 30_000, maxRetryWaitMs: 120_000 };

/**
 * Backoff before attempt `attempt + 1` (attempt counts from 1): "equal jitter", half fixed and half
 * random, so many clients that failed together do not retry together.
 */
export function backoffMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.backoffMaxMs, policy.backoffBaseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/**
 * Retry-After is either delta-seconds ("2", "1.5") or an HTTP date (RFC 9110 §10.2.3).
 * Returns milliseconds from `now`, or undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number.parseFloat(text) * 1000);
  // Date.parse is lenient ('-1' parses); an HTTP date always names its day or month.
  const at = /[a-z]/i.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** Waits `ms`, or rejects with CANCELLED as soon as `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal | undefined, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(cancelled(what));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(cancelled(what));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
