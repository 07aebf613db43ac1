/**
 * Errors the engine reports to people. Every message says what went wrong, where (file:line, id)
 * and what to do; the code decides the CLI exit status and the JSON-RPC error code.
 */
export type ErrorCode =
  | 'BAD_INPUT' // a file, row, flag or setting is wrong; nothing was changed
  | 'NOT_FOUND' // a project, round, trajectory or model does not exist
  | 'BACKEND' // the generation / scoring backend failed after retries
  | 'TRAINER' // the trainer process failed; the round is marked failed, its log kept
  | 'CANCELLED' // the user stopped the job; completed work is kept
  | 'STORE' // the database refused a write (disk full, locked, corrupt)
  | 'INTERNAL';

export const EXIT_CODES: Record<ErrorCode, number> = {
  BAD_INPUT: 2,
  NOT_FOUND: 3,
  BACKEND: 4,
  TRAINER: 5,
  CANCELLED: 130,
  STORE: 6,
  INTERNAL: 1,
};

export class EngineError extends Error {
  constructor(
    readonly code: ErrorCode,
    /** What went wrong and where, without the hint (the message is both). */
    readonly detail: string,
    readonly hint?: string,
  ) {
    super(hint ? `${detail}; ${hint}` : detail);
    this.name = 'EngineError';
  }
}

/**
 * The known name a misspelt one most likely meant ("anwser" → "answer", "learningrate" →
 * "learning_rate"): the same once case, `_` and `-` are ignored, else the nearest within two
 * edits; undefined when nothing is that close. For "did you mean" in error messages.
 */
export function didYouMean(name: string, known: readonly string[]): string | undefined {
  const norm = (x: string): string => x.toLowerCase().replace(/[_-]/g, '');
  const same = known.find((k) => norm(k) === norm(name));
  if (same !== undefined) return same;
  let best: string | undefined;
  let bestDistance = 3;
  for (const k of known) {
    const d = editDistance(k.toLowerCase(), name.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur.push(Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = cur;
  }
  return prev[b.length]!;
}

export function badInput(message: string, hint?: string): EngineError {
  return new EngineError('BAD_INPUT', message, hint);
}

export function cancelled(what: string): EngineError {
  return new EngineError('CANCELLED', `${what} was cancelled; completed work is kept`, 'run it again to continue');
}

/**
 * Turns anything thrown into an EngineError, keeping the message. `database` (the file's path)
 * names where a store error happened; every store error says what to do and that committed work
 * is kept (each write is one transaction: a failed one leaves nothing behind).
 */
export function asEngineError(err: unknown, database?: string): EngineError {
  if (err instanceof EngineError) return err;
  if (err instanceof Error && err.name === 'AbortError') return cancelled('the operation');
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown } | null)?.code;
  const where = database ? `${database}: ` : '';
  const kept = 'completed work is kept';
  if (/SQLITE_FULL|database or disk is full/i.test(message) || code === 'SQLITE_FULL') {
    return new EngineError('STORE', `${where}the database could not grow (${message})`, `free disk space on its drive and run the command again; ${kept}`);
  }
  if (typeof code === 'string' && code.startsWith('SQLITE_IOERR')) {
    return new EngineError('STORE', `${where}the database could not be written (${message})`, `check free disk space and the drive, then run the command again; ${kept}`);
  }
  if (code === 'ENOSPC' || code === 'EFBIG' || code === 'EDQUOT') {
    return new EngineError('STORE', `no space left to write a file (${message})`, `free disk space and run the command again; ${kept}`);
  }
  if (/SQLITE_BUSY|database is locked/i.test(message)) {
    return new EngineError('STORE', `${where}the database stayed locked: ${message}`, 'close other ARIES processes on this project and retry');
  }
  return new EngineError('INTERNAL', message);
}
