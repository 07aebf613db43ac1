import { cancelled } from '../../errors';

/**
 * Runs `task(0..count-1)` with at most `limit` running at once. The first failure stops the rest:
 * tasks not yet started never start, running ones see `signal` abort, and that first error is the
 * one thrown. When the caller's signal aborts, the promise rejects with CANCELLED at once, without
 * waiting for running tasks to notice.
 */
export async function runBounded(
  count: number,
  limit: number,
  task: (index: number, signal: AbortSignal) => Promise<void>,
  outer: AbortSignal | undefined,
  activity: string,
): Promise<void> {
  if (outer?.aborted) throw cancelled(activity);
  if (count === 0) return;
  const stop = new AbortController();
  let firstError: unknown;
  let failed = false;
  let next = 0;

  const worker = async () => {
    while (!stop.signal.aborted && next < count) {
      const index = next++;
      try {
        await task(index, stop.signal);
      } catch (err) {
        if (!failed) {
          failed = true;
          firstError = err;
        }
        stop.abort();
      }
    }
  };

  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => {
      stop.abort();
      reject(cancelled(activity));
    };
    outer?.addEventListener('abort', onAbort, { once: true });
  });
  // Only ever rejected by the race below; keep an unobserved rejection from being reported.
  aborted.catch(() => undefined);
  try {
    const workers = Array.from({ length: Math.min(limit, count) }, worker);
    await Promise.race([Promise.all(workers), aborted]);
  } finally {
    if (onAbort) outer?.removeEventListener('abort', onAbort);
  }
  if (outer?.aborted) throw cancelled(activity);
  if (failed) throw firstError;
}
