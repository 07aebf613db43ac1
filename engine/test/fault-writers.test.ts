import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { killAllCli, startCli, waitFor } from './support/bundled-cli';
import { type LoopbackServer, startLoopbackServer } from './support/loopback-openai-server';
import { integrity } from './support/store-digest';
import { REPO_ROOT } from './support/tiny-model';

/**
 * Two writers: while `aries generate` writes steps (an OpenAI-compatible loopback server answers,
 * so steps land as fast as the store takes them), other processes write to the same database the
 * way the review UI does (overrides and undos) and the way a second `aries import` does. Every
 * connection is the engine's own (WAL, busy_timeout). No SQLITE_BUSY may reach anyone, nothing
 * written may be lost, and generation must finish with every step.
 */
const PROMPTS = 300;
const K = 2;
const OVERRIDE_WRITERS = 3;

interface WriterReport {
  ok: number;
  errors: string[];
}

function count(path: string, sql: string): number {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).pluck().get() as number;
  } finally {
    db.close();
  }
}

/** A process that opens `db` with the engine's openDb at the moment `at` (support/open-at.ts). */
function openAt(db: string, at: number): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'engine/test/support/open-at.ts'), db, String(at)], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  return new Promise((resolveExit) => child.on('close', (code) => resolveExit({ code, output })));
}

describe('two writers: overrides and imports from other processes while generation runs', { timeout: 240_000 }, () => {
  let server: LoopbackServer;
  let root: string;
  const writers: ChildProcess[] = [];

  before(async () => {
    server = await startLoopbackServer();
    root = mkdtempSync(join(tmpdir(), 'aries-writers-'));
    writeFileSync(join(root, 'train.jsonl'), Array.from({ length: PROMPTS }, (_, i) => JSON.stringify({ id: `p${i}`, prompt: `question ${i}: what is ${i} + 1?`, answer: i + 1 })).join('\n') + '\n');
    const config = {
      name: 'writers',
      model: 'loopback-model',
      prompts: { train: ['train.jsonl'] },
      generation: { backend: 'openai', refinements: K, batchSize: 32, maxNewTokens: 6, stopWhenRepeated: false, openai: { baseUrl: server.baseUrl, maxConcurrency: 8 } },
    };
    writeFileSync(join(root, 'aries.json'), JSON.stringify(config, null, 2));
  });

  after(async () => {
    for (const w of writers) if (w.exitCode === null) w.kill('SIGKILL');
    await killAllCli();
    await server?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  function startWriter(mode: string, seed: number, stop: string): Promise<WriterReport> {
    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'engine/test/support/second-writer.ts'), root, mode, stop, String(seed)], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    writers.push(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    return new Promise((resolveReport) =>
      child.on('close', (code) => {
        try {
          resolveReport(JSON.parse(out.trim().split('\n').pop() ?? '') as WriterReport);
        } catch {
          resolveReport({ ok: 0, errors: [`writer exited ${code}: ${err.slice(-2000)}`] });
        }
      }),
    );
  }

  it('no SQLITE_BUSY reaches anyone; every step and every override is kept', async (t) => {
    const db = join(root, '.aries/aries.db');
    const stop = join(root, '.stop-writers');
    const gen = startCli(['generate', '-p', root]);
    assert.ok(await waitFor(gen, () => count(db, 'SELECT COUNT(*) FROM steps') > 0, 60_000, 20), `generation should have started: ${gen.stderr()}`);
    const reports = [
      ...Array.from({ length: OVERRIDE_WRITERS }, (_, i) => startWriter('overrides', 100 + i, stop)),
      startWriter('import', 7, stop),
    ];
    const { code } = await gen.exited;
    const stepsAtEnd = count(db, 'SELECT COUNT(*) FROM steps');
    writeFileSync(stop, '');
    const done = await Promise.all(reports);
    assert.equal(code, 0, `generate failed while others wrote: ${gen.stderr()}`);
    assert.doesNotMatch(gen.stderr(), /SQLITE_BUSY|database is locked/);
    for (const [i, r] of done.entries()) assert.deepEqual(r.errors.slice(0, 5), [], `writer ${i} hit errors (${r.errors.length}); first: ${r.errors[0]}`);
    assert.equal(stepsAtEnd, PROMPTS * (K + 1), 'every step was written');
    const overrides = done.slice(0, OVERRIDE_WRITERS).reduce((n, r) => n + r.ok, 0);
    const imports = done.at(-1)!.ok;
    assert.ok(overrides > 0 && imports > 0, `the writers wrote while generation ran (${overrides} override calls, ${imports} imports)`);
    assert.equal(count(db, "SELECT COUNT(*) FROM prompts WHERE split = 'extra'"), imports * 20, 'every imported prompt is there once');
    assert.equal(integrity(db), 'ok');
    t.diagnostic(`generate wrote ${stepsAtEnd} steps (one commit per answer) while ${OVERRIDE_WRITERS} review processes made ${overrides} override/undo calls (${count(db, 'SELECT COUNT(*) FROM overrides')} overrides stored) and one process made ${imports} imports; 0 errors`);
  });

  it('processes opening one new database in the same millisecond all succeed (the switch to WAL)', async (t) => {
    // Without a retry, the switch to WAL fails at once for a process that read the header while
    // another one was writing it (measured: 3 of 20 tries of 6 processes failed).
    const TRIES = 6;
    const AT_ONCE = 8;
    for (let i = 0; i < TRIES; i++) {
      const fresh = mkdtempSync(join(tmpdir(), 'aries-wal-'));
      try {
        const at = Date.now() + 2_500; // every process has started and loaded the store by then
        const runs = Array.from({ length: AT_ONCE }, () => openAt(join(fresh, 'aries.db'), at));
        (await Promise.all(runs)).forEach((r, j) => assert.equal(r.code, 0, `try ${i}, process ${j}: ${r.output}`));
        assert.equal(count(join(fresh, 'aries.db'), 'PRAGMA journal_mode'), 'wal');
      } finally {
        rmSync(fresh, { recursive: true, force: true });
      }
    }
    t.diagnostic(`${TRIES} new databases opened by ${AT_ONCE} processes in the same millisecond, 0 errors`);
  });

  it('engines opening a new project at the same moment all succeed (migrations, the base model)', async (t) => {
    const TRIES = 3;
    const AT_ONCE = 6;
    let opened = 0;
    for (let i = 0; i < TRIES; i++) {
      const fresh = mkdtempSync(join(tmpdir(), 'aries-open-'));
      try {
        writeFileSync(join(fresh, 'aries.json'), JSON.stringify({ name: 'fresh', model: 'model' }));
        const runs = Array.from({ length: AT_ONCE }, () => startCli(['stats', '--json', '-p', fresh]));
        const exits = await Promise.all(runs.map((r) => r.exited));
        exits.forEach((e, j) => assert.equal(e.code, 0, `try ${i}, engine ${j}: ${runs[j]!.stderr()}`));
        opened += exits.length;
        assert.equal(count(join(fresh, '.aries/aries.db'), "SELECT COUNT(*) FROM models WHERE name = 'base'"), 1);
      } finally {
        rmSync(fresh, { recursive: true, force: true });
      }
    }
    t.diagnostic(`${TRIES} new projects opened by ${AT_ONCE} engines at once: ${opened} opens, 0 errors`);
  });
});
