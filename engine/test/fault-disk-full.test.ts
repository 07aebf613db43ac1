import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { asEngineError } from '../src/errors';
import { silentLogger } from '../src/log';
import { addOverride } from '../src/override/overrides';
import { closeProject, openProject, type Project } from '../src/project/project';
import { importPrompts } from '../src/prompt/import';
import { exportPhase, scorePhase, selectPhase } from '../src/round/phases';
import { saveSteps } from '../src/trajectory/store';
import { bundledCli } from './support/bundled-cli';
import { dbDigest, findFiles, integrity } from './support/store-digest';
import { copyProject, type SyntheticProject, syntheticProject } from './support/synthetic-round';
import { REPO_ROOT } from './support/tiny-model';

/**
 * Disk full during a write. In process: the engine's own connection capped with PRAGMA
 * max_page_count, so the database cannot grow past a few pages (SQLITE_FULL). As a real process:
 * `aries` started with a file-size limit (ulimit -f), so the WAL, the database and export files
 * cannot grow (EFBIG: what a full disk looks like to a writer). Either way: a STORE error that
 * names the database and says what to do, PRAGMA integrity_check ok, no transaction or batch half
 * written, and once there is room a rerun finishes with the same result as a run that had room.
 */

const PROMPTS = 3000;
const sha = (x: unknown): string => createHash('sha256').update(Buffer.isBuffer(x) || typeof x === 'string' ? x : JSON.stringify(x)).digest('hex');

function rowsOf(path: string, sql: string): unknown[] {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).raw().all();
  } finally {
    db.close();
  }
}

const SCORES = 'SELECT step_id, scorer, value, raw_json FROM scores ORDER BY step_id, scorer';
const FLAGS = 'SELECT id, auto_status, margin, disagreement, override_action FROM trajectories ORDER BY id';
const SELECTIONS = 'SELECT trajectory_id, strategy, status, chosen_step_id, rejected_step_id, reason, margin FROM selections ORDER BY trajectory_id, strategy';

describe('disk full during a write', { timeout: 300_000 }, () => {
  let base: SyntheticProject;
  const stage: Record<string, string> = {};
  const dirs: string[] = [];
  let bigImport: string;

  before(async () => {
    base = syntheticProject({ prompts: PROMPTS, padding: 200 });
    bigImport = join(base.root, 'more.jsonl');
    writeFileSync(bigImport, Array.from({ length: 5000 }, (_, i) => JSON.stringify({ id: `m${i}`, prompt: `More ${i}: ${'y'.repeat(200)}`, answer: i })).join('\n') + '\n');
    // collected -> scored -> selected -> exported, each kept as a starting point, the last ones as clean results
    stage.collected = copyProject(base.root, 'collected');
    stage.scored = copyProject(base.root, 'scored');
    await inProject(stage.scored, (p) => scorePhase(p));
    stage.selected = copyProject(stage.scored, 'selected');
    await inProject(stage.selected, (p) => selectPhase(p));
    stage.exported = copyProject(stage.selected, 'exported');
    await inProject(stage.exported, (p) => exportPhase(p));
    stage.imported = copyProject(base.root, 'imported');
    await inProject(stage.imported, (p) => importPrompts(p.db, bigImport, 'more'));
    dirs.push(...Object.values(stage));
  });

  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    base?.dispose();
  });

  async function inProject<T>(root: string, work: (p: Project) => Promise<T> | T): Promise<T> {
    const p = openProject(root, silentLogger);
    try {
      return await work(p);
    } finally {
      closeProject(p);
    }
  }

  /**
   * Runs `work` on a copy of `from` whose connection may grow `room` pages; returns the copy, the
   * error and the digest of the database as it was opened (opening records the copy's folder).
   */
  async function capped(from: string, room: number, work: (p: Project) => unknown): Promise<{ root: string; message: string; before: string }> {
    const root = copyProject(from, `full-${dirs.length}`);
    dirs.push(root);
    const p = openProject(root, silentLogger);
    const before = dbDigest(db(root));
    try {
      const pages = p.db.pragma('page_count', { simple: true }) as number;
      p.db.pragma(`max_page_count = ${pages + room}`);
      const err = await Promise.resolve()
        .then(() => work(p))
        .then(() => null, (e: unknown) => e);
      assert.ok(err, `the write should have failed with ${room} pages of room`);
      const e = asEngineError(err, p.db.name);
      assert.equal(e.code, 'STORE', e.message);
      assert.match(e.message, /aries\.db: the database could not grow \(database or disk is full\); free disk space .* and run the command again; completed work is kept/);
      return { root, message: e.message, before };
    } finally {
      closeProject(p);
    }
  }

  const db = (root: string): string => join(root, '.aries/aries.db');

  it('import (one transaction): nothing imported; with room a rerun imports all', async () => {
    const { root, before } = await capped(stage.collected!, 10, (p) => importPrompts(p.db, bigImport, 'more'));
    assert.equal(integrity(db(root)), 'ok');
    assert.equal(dbDigest(db(root)), before, 'a failed import changes nothing');
    await inProject(root, (p) => importPrompts(p.db, bigImport, 'more'));
    const q = "SELECT id, content_hash, prompt_json, reference, split, seq FROM prompts WHERE split = 'more' ORDER BY seq";
    assert.equal(sha(rowsOf(db(root), q)), sha(rowsOf(db(stage.imported!), q)));
  });

  it('score (batches of 256): whole batches only; with room a rerun scores the rest', async () => {
    const { root } = await capped(stage.collected!, 60, (p) => scorePhase(p));
    assert.equal(integrity(db(root)), 'ok');
    const n = rowsOf(db(root), SCORES).length;
    assert.ok(n > 0 && n % 256 === 0, `scores committed before the disk filled: ${n} (whole batches)`);
    await inProject(root, (p) => scorePhase(p));
    assert.equal(sha(rowsOf(db(root), SCORES)), sha(rowsOf(db(stage.scored!), SCORES)));
  });

  it('select (one transaction): no selection kept; with room a rerun selects all', async () => {
    const { root } = await capped(stage.scored!, 5, (p) => selectPhase(p));
    assert.equal(integrity(db(root)), 'ok');
    // (the round's time spent on select is recorded, by design: timings sum every attempt)
    assert.deepEqual(rowsOf(db(root), SELECTIONS), []);
    assert.deepEqual(rowsOf(db(root), 'SELECT status FROM rounds'), [['scored']]);
    assert.equal(sha(rowsOf(db(root), FLAGS)), sha(rowsOf(db(stage.scored!), FLAGS)), 'no review flag changed');
    await inProject(root, (p) => selectPhase(p));
    assert.equal(sha(rowsOf(db(root), SELECTIONS)), sha(rowsOf(db(stage.selected!), SELECTIONS)));
  });

  it('a step batch (generation) and an override: refused whole', async () => {
    const { root, before } = await capped(stage.selected!, 0, (p) => {
      const t = p.db.prepare('SELECT t.id, MIN(s.id) AS a, MAX(s.id) AS b FROM trajectories t JOIN steps s ON s.trajectory_id = t.id GROUP BY t.id LIMIT 1').get() as { id: number; a: number; b: number };
      try {
        addOverride(p.db, { trajectoryId: t.id, curator: 'c', action: 'pair', chosenStepId: t.a, rejectedStepId: t.b, note: 'n'.repeat(20_000) });
      } catch (err) {
        assert.match(String(err), /database or disk is full/);
      }
      const model = p.db.prepare('SELECT id FROM models LIMIT 1').pluck().get() as number;
      const steps = Array.from({ length: 50 }, (_, i) => ({ trajectoryId: t.id, idx: 100 + i, text: 'z'.repeat(4000), promptTokens: 1, completionTokens: 1, finishReason: 'stop' as const, modelId: model, sampling: { temperature: 1, topP: 1, topK: 0, maxNewTokens: 1, stop: [] }, seed: i, durationMs: 1, completes: null }));
      saveSteps(p.db, steps);
    });
    assert.equal(integrity(db(root)), 'ok');
    assert.equal(dbDigest(db(root)), before, 'neither the override nor any step of the batch was written');
  });

  // A real engine process that cannot grow its files (RLIMIT_FSIZE; bash sets it, the arguments are passed as $@, not parsed).
  const noBash = process.platform === 'win32' || !existsSync('/bin/bash') ? 'needs bash and ulimit' : undefined;
  function cliWithFileLimit(kib: number, args: string[]): { code: number | null; stderr: string } {
    const r = spawnSync('/bin/bash', ['-c', 'ulimit -f "$1" && shift && exec "$@"', 'aries-limited', String(kib), process.execPath, bundledCli(), ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000, killSignal: 'SIGKILL' });
    return { code: r.status, stderr: r.stderr };
  }

  const cases: [phase: string, from: string, check: string][] = [
    ['import', 'collected', "SELECT id, content_hash, prompt_json, reference, split, seq FROM prompts ORDER BY seq"],
    ['score', 'collected', SCORES],
    ['select', 'scored', SELECTIONS],
    ['export', 'selected', 'SELECT COUNT(*) FROM exports'],
  ];
  for (const [phase, from, check] of cases) {
    it(`aries ${phase} with no room to grow its files: exit 6 with the database named and what to do; rerun with room matches`, { skip: noBash }, () => {
      const root = copyProject(stage[from]!, `ulimit-${phase}`);
      dirs.push(root);
      const args = phase === 'import' ? ['import', bigImport, '--split', 'more', '-p', root] : [phase, '-p', root];
      const r = cliWithFileLimit(phase === 'export' ? 64 : 256, args);
      assert.equal(r.code, 6, `expected the STORE exit code: ${r.stderr}`);
      assert.match(r.stderr, phase === 'export' ? /train\.jsonl: no space left to write it \(EFBIG\)/ : /aries\.db: the database could not (grow|be written)/);
      assert.match(r.stderr, /free disk space/);
      assert.equal(integrity(db(root)), 'ok');
      assert.deepEqual(findFiles(join(root, '.aries'), (n) => n.includes('.tmp-')), [], 'no temporary file left');
      const rerun = cliWithFileLimit(1 << 30, args);
      assert.equal(rerun.code, 0, rerun.stderr);
      const reference = ({ import: 'imported', score: 'scored', select: 'selected', export: 'exported' } as Record<string, string>)[phase]!;
      assert.equal(sha(rowsOf(db(root), check)), sha(rowsOf(db(stage[reference]!), check)));
      if (phase === 'export') {
        const [[recorded]] = rowsOf(db(root), 'SELECT sha256 FROM exports') as [[string]];
        assert.equal(sha(readFileSync(join(root, '.aries/exports/round-1/data/train.jsonl'))), recorded, 'the file on disk is the one recorded');
      }
    });
  }
});
