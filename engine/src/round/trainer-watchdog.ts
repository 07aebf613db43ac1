/**
 * The trainer runs under a small watchdog: the engine's own Node running WATCHDOG_SOURCE, which
 * starts the trainer command (an argument list, no shell) in a process group of its own. The
 * engine holds the watchdog's stdin open and never writes to it; when the engine dies, even by
 * kill -9, that pipe closes and the watchdog stops the trainer's whole group (SIGTERM, then SIGKILL
 * after GRACE_MS), so no trainer outlives its engine holding memory or a GPU, whatever the command
 * (the built-in trainer, `trl dpo`, `accelerate launch` and its workers).
 *
 * Otherwise it is transparent: the trainer writes straight to the engine's stdout / stderr pipes,
 * SIGTERM / SIGINT sent to the watchdog (cancel) are passed to the group, and the watchdog exits
 * with the trainer's code or dies by the trainer's signal.
 */

/** Below the engine's 5 s between SIGTERM and SIGKILL on cancel, so the group is gone first. */
const GRACE_MS = 3000;

const WATCHDOG_SOURCE = `'use strict';
const { spawn } = require('node:child_process');
const [exe, ...args] = process.argv.slice(1);
const group = process.platform !== 'win32';
const child = spawn(exe, args, { stdio: ['ignore', 'inherit', 'inherit'], detached: group });
const signalTrainer = (sig) => {
  try {
    if (group) process.kill(-child.pid, sig);
    else child.kill(sig);
  } catch {}
};
let stopping = false;
const stop = (sig) => {
  if (stopping) return signalTrainer('SIGKILL');
  stopping = true;
  signalTrainer(sig);
  setTimeout(() => signalTrainer('SIGKILL'), ${GRACE_MS}).unref();
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
process.stdin.on('end', () => stop('SIGTERM'));
process.stdin.on('error', () => stop('SIGTERM'));
process.stdin.resume();
child.on('error', (err) => {
  process.stderr.write('cannot start ' + exe + ': ' + err.message + '\\n');
  process.exit(127);
});
child.on('exit', (code, signal) => {
  if (stopping) signalTrainer('SIGKILL');
  if (signal) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  }
  process.exit(code === null ? 1 : code);
});
`;

/** The program and arguments that run `command` under the watchdog. */
export function underWatchdog(command: readonly string[]): { exe: string; args: string[] } {
  return { exe: process.execPath, args: ['-e', WATCHDOG_SOURCE, '--', ...command] };
}
