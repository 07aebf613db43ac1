/**
 * Where the engine writes human-readable logs. The CLI logs to stderr; the JSON-RPC server logs
 * through the connection's console (stdout carries the protocol and must never be written to).
 */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export function stderrLogger(verbose = false): Logger {
  const write = (level: string) => (message: string) => process.stderr.write(`[${level}] ${message}\n`);
  return {
    debug: verbose ? write('debug') : () => undefined,
    info: write('info'),
    warn: write('warn'),
    error: write('error'),
  };
}

export const silentLogger: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
