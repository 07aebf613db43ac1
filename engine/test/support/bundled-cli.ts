import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildSync } from 'esbuild';
import { REPO_ROOT } from './tiny-model';

/**
 * The `aries` CLI bundled with esbuild the way dist/aries.js ships, once per test process. Fault
 * tests start many real engine processes; the bundle starts in about 0.5 s where `--import tsx`
 * takes about 2 s. It is written under node_modules/.cache (so better-sqlite3 and onnxruntime
 * resolve from the repository) and removed when the test process ends.
 */
let bundle: string | undefined;

export function bundledCli(): string {
  if (bundle) return bundle;
  const dir = join(REPO_ROOT, 'node_modules/.cache/aries-test-cli');
  mkdirSync(dir, { recursive: true });
  const out = join(dir, `aries-${process.pid}.js`);
  buildSync({
    entryPoints: [join(REPO_ROOT, 'engine/src/cli/main.ts')],
    outfile: out,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['better-sqlite3', 'onnxruntime-node'],
    logLevel: 'error',
  });
  process.on('exit', () => rmSync(out, { force: true }));
  bundle = out;
  return out;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `aries ARGS` to the end (bounded by timeoutMs; then SIGKILL). */
export function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): CliResult {
  const r = spawnSync(process.execPath, [bundledCli(), ...args], {
    cwd: REPO_ROOT,
    env: options.env ?? process.env,
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 120_000,
    killSignal: 'SIGKILL',
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** An engine process started in the background, to be killed mid-phase. */
export interface RunningCli {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stdout(): string;
  stderr(): string;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

export function startCli(args: string[], options: { env?: NodeJS.ProcessEnv } = {}): RunningCli {
  const child = spawn(process.execPath, [bundledCli(), ...args], { cwd: REPO_ROOT, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) =>
    child.on('close', (code, signal) => {
      running.delete(child);
      resolveExit({ code, signal });
    }),
  );
  return { child, exited, stdout: () => out, stderr: () => err };
}

/** Like runCli, without blocking this process (a loopback server in it must keep answering). */
export async function runCliAsync(args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  const cli = startCli(args, options);
  const timer = setTimeout(() => cli.child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
  try {
    const { code, signal } = await cli.exited;
    return { code, signal, stdout: cli.stdout(), stderr: cli.stderr() };
  } finally {
    clearTimeout(timer);
  }
}

/** Kills every engine process still running (for after() hooks). */
export async function killAllCli(): Promise<void> {
  const waits = [...running].map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once('close', r))));
  for (const c of running) c.kill('SIGKILL');
  await Promise.race([Promise.all(waits), sleep(5000)]);
}

/**
 * Polls `ready` every few milliseconds until it holds, the process exits, or `timeoutMs` passes.
 * Returns whether it held while the process was still running.
 */
export async function waitFor(cli: RunningCli, ready: () => boolean, timeoutMs: number, everyMs = 2): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (cli.child.exitCode !== null || cli.child.signalCode !== null) return false;
    try {
      if (ready()) return true;
    } catch {
      // the file or database is not there yet
    }
    await sleep(everyMs);
  }
  return false;
}

/** kill -9, and wait for the process to be gone. */
export async function kill9(cli: RunningCli): Promise<void> {
  cli.child.kill('SIGKILL');
  await cli.exited;
}
