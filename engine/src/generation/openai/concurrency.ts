import { setMaxListeners } from 'node:events';
import { cancelled } from '../../errors';

/**
 * One signal that aborts when any of `signals` does; `dispose` removes its listeners, so a
 * long-lived signal (a backend's close) does not collect one per call.
 */
export function linkSignals(signals: (AbortSignal | undefined)[]): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onAbort = () => controller.abort();
  const sources = signals.filter((s): s is AbortSignal => s !== undefined);
  for (const s of sources) {
    if (s.aborted) controller.abort();
    else s.addEventListener('abort', onAbort, { once: true });
  }
  return { signal: controller.signal, dispose: () => sources.forEach((s) => s.removeEventListener('abort', onAbort)) };
}

/**
 * Runs `task(0..count-1)` with at most `limit` running at once. The first failure stops the rest:
 * tasks not yet started never start, running ones see `signal` abort, and that first error is the
 * one thrown. When the caller's signal aborts, the promise rejects with CANCELLED at once, without
 * waiting for running tasks to notice. The signal a task gets aborts in both cases.
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
  // Every running task's request listens on it: up to `limit` listeners is expected, not a leak.
  setMaxListeners(0, stop.signal);
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
