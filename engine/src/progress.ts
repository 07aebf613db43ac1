import { cancelled } from './errors';

/** Progress of a long job, as the CLI's bar, the JSON-RPC notification and the VS Code notification show it. */
export interface ProgressEvent {
  /** generate | score | select | export | train | evaluate | import */
  phase: string;
  done: number;
  total: number;
  message?: string;
  /** Phase-specific live values (e.g. training loss, reward margin). */
  metrics?: Record<string, number>;
}

export type ProgressSink = (event: ProgressEvent) => void;

/** What every long operation accepts: a way to report progress and a way to be stopped. */
export interface JobControl {
  signal?: AbortSignal;
  progress?: ProgressSink;
}

export function throwIfCancelled(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw cancelled(what);
}
