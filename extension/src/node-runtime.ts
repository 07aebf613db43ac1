import { execFile } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { posix, win32 } from 'node:path';

/**
 * Which Node runs the engine. The engine's better-sqlite3 is a native module built for one Node
 * ABI (Node 20: NODE_MODULE_VERSION 115); VS Code desktop's extension host is Electron with
 * another ABI, so the engine runs as its own process on a real Node: `aries.nodePath` when set,
 * else the first `node` on PATH that loads the module, else the extension host itself when it is
 * a plain Node (code-server, remote hosts). Every candidate is probed by actually loading
 * better-sqlite3, so a wrong version is caught before the engine starts, with a fix to show.
 * No `vscode` import: this file is unit-tested under plain Node.
 */

export interface NodeRuntime {
  path: string;
  version: string;
  /** process.versions.modules of that Node. */
  abi: number;
}

export type NodeResolution = { ok: true; runtime: NodeRuntime; source: 'setting' | 'PATH' | 'extension host' } | { ok: false; problem: string; fix: string };

/** What a probe of one executable found (the JSON the probe script prints, or why it failed). */
export type ProbeResult = { version: string; abi: number; sqlite: 'ok' | string } | { error: string };

export interface ResolveOptions {
  /** The aries.nodePath setting ('' = discover). */
  configured: string;
  pathEnv: string | undefined;
  platform: NodeJS.Platform;
  /** The extension host's executable and whether it is Electron (then it cannot run the engine). */
  host: { execPath: string; electron: boolean };
  probe: (exe: string) => Promise<ProbeResult>;
  isExecutable?: (file: string) => boolean;
}

export const MIN_NODE_MAJOR = 20;

/** `node` executables on PATH, in PATH order, without duplicates. */
export function nodeOnPath(pathEnv: string | undefined, platform: NodeJS.Platform, isExecutable: (f: string) => boolean = executable): string[] {
  const path = platform === 'win32' ? win32 : posix;
  const name = platform === 'win32' ? 'node.exe' : 'node';
  const out: string[] = [];
  for (const dir of (pathEnv ?? '').split(path.delimiter)) {
    if (!dir || !path.isAbsolute(dir)) continue;
    const f = path.join(dir, name);
    if (!out.includes(f) && isExecutable(f)) out.push(f);
  }
  return out;
}

function executable(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Why a probed Node cannot run the engine, or null when it can. */
export function unsuitable(exe: string, r: ProbeResult): string | null {
  if ('error' in r) return `${exe} did not run (${r.error})`;
  const major = Number(/^v(\d+)/.exec(r.version)?.[1] ?? 0);
  if (major < MIN_NODE_MAJOR) return `${exe} is Node ${r.version}; the engine needs Node ${MIN_NODE_MAJOR} or later`;
  if (r.sqlite !== 'ok') {
    const abi = /NODE_MODULE_VERSION (\d+)\.\s+This version of Node\.js requires\s+NODE_MODULE_VERSION (\d+)/.exec(r.sqlite);
    if (abi) return `${exe} is Node ${r.version} (ABI ${abi[2]}), but the bundled better-sqlite3 is built for ABI ${abi[1]}${abi[1] === '115' ? ' (Node 20)' : ''}`;
    return `${exe} (Node ${r.version}) cannot load the bundled better-sqlite3: ${r.sqlite.split('\n')[0]}`;
  }
  return null;
}

export async function resolveEngineNode(o: ResolveOptions): Promise<NodeResolution> {
  const fix = `Set "aries.nodePath" to a Node.js ${MIN_NODE_MAJOR} executable (e.g. /usr/bin/node), then run "ARIES: Restart Engine".`;
  if (o.configured) {
    const isExe = o.isExecutable ?? executable;
    if (!isExe(o.configured)) return { ok: false, problem: `"aries.nodePath" is ${o.configured}, which is not an executable file.`, fix };
    const r = await o.probe(o.configured);
    const why = unsuitable(o.configured, r);
    if (why) return { ok: false, problem: `"aries.nodePath": ${why}.`, fix };
    return { ok: true, runtime: runtimeOf(o.configured, r), source: 'setting' };
  }
  const problems: string[] = [];
  for (const exe of nodeOnPath(o.pathEnv, o.platform, o.isExecutable)) {
    const r = await o.probe(exe);
    const why = unsuitable(exe, r);
    if (!why) return { ok: true, runtime: runtimeOf(exe, r), source: 'PATH' };
    problems.push(why);
  }
  if (!o.host.electron) {
    const r = await o.probe(o.host.execPath);
    if (!unsuitable(o.host.execPath, r)) return { ok: true, runtime: runtimeOf(o.host.execPath, r), source: 'extension host' };
  }
  const problem = problems.length
    ? `No usable Node.js for the ARIES engine: ${problems.join('; ')}.`
    : `The ARIES engine needs Node.js ${MIN_NODE_MAJOR} (its database module is native) and no \`node\` was found on PATH.`;
  return { ok: false, problem, fix: `Install Node.js ${MIN_NODE_MAJOR}, or ${fix[0]!.toLowerCase()}${fix.slice(1)}` };
}

function runtimeOf(path: string, r: ProbeResult): NodeRuntime {
  if ('error' in r) throw new Error('unreachable: probe failed');
  return { path, version: r.version, abi: r.abi };
}

/** The probe: run `exe` with a script that reports its version and tries to open an in-memory database with our better-sqlite3. */
export function probeNode(sqliteModuleDir: string, timeoutMs = 15_000): (exe: string) => Promise<ProbeResult> {
  const script = `
let sqlite = 'ok';
try { const D = require(process.argv[1]); new D(':memory:').close(); } catch (e) { sqlite = String(e && e.message || e); }
process.stdout.write(JSON.stringify({ version: process.version, abi: Number(process.versions.modules), sqlite }));`;
  return (exe) =>
    new Promise((resolve) => {
      // ELECTRON_RUN_AS_NODE: if the user points at an Electron binary it behaves as Node (and is then refused by ABI).
      execFile(exe, ['-e', script, sqliteModuleDir], { timeout: timeoutMs, env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' }, windowsHide: true }, (err, stdout) => {
        if (err && !stdout) return resolve({ error: err.message.split('\n')[0] ?? String(err) });
        try {
          const v = JSON.parse(stdout) as { version: unknown; abi: unknown; sqlite: unknown };
          if (typeof v.version !== 'string' || typeof v.abi !== 'number' || typeof v.sqlite !== 'string') return resolve({ error: `unexpected probe output: ${stdout.slice(0, 200)}` });
          resolve({ version: v.version, abi: v.abi, sqlite: v.sqlite });
        } catch {
          resolve({ error: `unexpected probe output: ${stdout.slice(0, 200)}` });
        }
      });
    });
}
