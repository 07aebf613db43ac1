import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { kill9, killAllCli, runCli, startCli, waitFor } from './support/bundled-cli';
import { findFiles, integrity } from './support/store-digest';
import { copyProject, rng, type SyntheticProject, syntheticProject } from './support/synthetic-round';

/**
 * kill -9 of the engine (`aries` as a real process) during import, score, select and export, at
 * seeded random times and at moments found by polling the database / the export folder. After
 * every kill: PRAGMA integrity_check is ok, what was committed is whole (a transaction or a batch,
 * never part of one), no file that looks complete is partial; then a rerun finishes and the result
 * equals an uninterrupted run's. ARIES_FAULT_TRIALS (default 4 per phase) and ARIES_FAULT_SEED
 * make it a longer soak. Generate is covered by crash-resume.test.ts, training by fault-train.
 */
const TRIALS = Number(process.env.ARIES_FAULT_TRIALS ?? 4);
const SEED = Number(process.env.ARIES_FAULT_SEED ?? 20261129);
const PROMPTS = 6_000;
const K = 2;
const STEPS = PROMPTS * (K + 1);

type Query = (db: Database.Database) => unknown;

function read<T>(path: string, q: (db: Database.Database) => T): T {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return q(db);
  } finally {
    db.close();
  }
}

const sha = (x: unknown): string => createHash('sha256').update(typeof x === 'string' || Buffer.isBuffer(x) ? x : JSON.stringify(x)).digest('hex');
const rows = (sql: string): Query => (db) => db.prepare(sql).raw().all();

/** What each phase produces, without timestamps or ids that legitimately differ between runs. */
const RESULT: Record<string, Query> = {
  import: rows('SELECT id, content_hash, prompt_json, reference, split, source, seq FROM prompts ORDER BY seq'),
  score: rows('SELECT step_id, scorer, value, raw_json FROM scores ORDER BY step_id, scorer'),
  select: (db) => [
    db.prepare('SELECT trajectory_id, strategy, status, chosen_step_id, rejected_step_id, reason, margin FROM selections ORDER BY trajectory_id, strategy').raw().all(),
    db.prepare('SELECT id, auto_status, margin, disagreement FROM trajectories ORDER BY id').raw().all(),
    db.prepare('SELECT status FROM rounds').raw().all(),
  ],
};

interface Tally {
  trials: number;
  /** Killed before the phase wrote anything visible. */
  before: number;
  /** Killed with part of the phase's work committed (or its temp file on disk). */
  mid: number;
  /** The phase had committed everything (or exited) before the kill. */
  after: number;
}

function report(t: TestContext, phase: string, tally: Tally): void {
  t.diagnostic(`${phase}: ${tally.trials} kills (${tally.before} before any write, ${tally.mid} mid-phase, ${tally.after} after it finished); every rerun matched the uninterrupted run`);
}

describe('kill -9 of the engine during import, score, select and export', { timeout: 600_000 }, () => {
  let base: SyntheticProject;
  const stage: Record<string, string> = {};
  const clean: Record<string, string> = {};
  const timing: Record<string, number> = {};
  const bigImport = join(tmpdir(), `aries-fault-import-${process.pid}.jsonl`);
  const IMPORT_ROWS = 10_000;
  const pick = rng(SEED);

  before(() => {
    base = syntheticProject({ prompts: PROMPTS, refinements: K, padding: 60, seed: SEED });
    writeFileSync(bigImport, Array.from({ length: IMPORT_ROWS }, (_, i) => JSON.stringify({ id: `h${i}`, prompt: `What is ${i} plus ${i % 97}?`, answer: i + (i % 97) })).join('\n') + '\n');
    // Each phase's starting state, and its uninterrupted result (and how long it took, kills are drawn inside that).
    const chain: [string, string[]][] = [
      ['import', ['import', bigImport, '--split', 'heldout']],
      ['score', ['score']],
      ['select', ['select']],
      ['export', ['export']],
    ];
    let from = base.root;
    for (const [phase, args] of chain) {
      stage[phase] = copyProject(from, `${phase}-start`);
      const done = copyProject(from, `${phase}-clean`);
      const t0 = Date.now();
      const r = runCli([...args, '-p', done]);
      timing[phase] = Date.now() - t0;
      assert.equal(r.code, 0, `${phase}: ${r.stderr}`);
      clean[phase] = done;
      from = done;
    }
  });

  after(async () => {
    await killAllCli();
    for (const dir of [base?.root, ...Object.values(stage), ...Object.values(clean)]) if (dir) rmSync(dir, { recursive: true, force: true });
    rmSync(bigImport, { force: true });
  });

  /** Runs one phase TRIALS times, killing it at a drawn moment; `observe` classifies the state the kill left and checks it. */
  async function trials(
    t: TestContext,
    phase: string,
    args: string[],
    trigger: ((root: string) => boolean) | null,
    observe: (root: string) => 'before' | 'mid' | 'after',
  ): Promise<void> {
    const tally: Tally = { trials: 0, before: 0, mid: 0, after: 0 };
    for (let i = 0; i < TRIALS; i++) {
      const root = copyProject(stage[phase]!, `trial-${i}`);
      try {
        const cli = startCli([...args, '-p', root]);
        // Odd trials wait for the phase's first visible write, then a little more; even ones a random time.
        if (trigger && i % 2 === 1) {
          await waitFor(cli, () => trigger(root), 60_000);
          await sleep(pick(40));
        } else await sleep(pick(timing[phase]!));
        await kill9(cli);
        const db = join(root, '.aries/aries.db');
        assert.equal(integrity(db), 'ok', `${phase} trial ${i}: integrity after the kill`);
        tally[observe(root)]++;
        tally.trials++;
        const rerun = runCli([...args, '-p', root]);
        assert.equal(rerun.code, 0, `${phase} trial ${i}: rerun failed: ${rerun.stderr}`);
        assert.equal(integrity(db), 'ok');
        if (RESULT[phase]) assert.equal(sha(read(db, RESULT[phase]!)), sha(read(join(clean[phase]!, '.aries/aries.db'), RESULT[phase]!)), `${phase} trial ${i}: the resumed result differs from the uninterrupted run`);
        else checkExport(root, clean[phase]!);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    }
    report(t, phase, tally);
  }

  it('phases take (uninterrupted, process start included)', (t) => {
    t.diagnostic(JSON.stringify(timing));
  });

  it('import: one transaction, all rows or none; a rerun imports them once', async (t) => {
    await trials(t, 'import', ['import', bigImport, '--split', 'heldout'], null, (root) => {
      const n = read(join(root, '.aries/aries.db'), (db) => (db.prepare("SELECT COUNT(*) AS n FROM prompts WHERE split = 'heldout'").get() as { n: number }).n);
      assert.ok(n === 0 || n === IMPORT_ROWS, `a killed import left ${n} of ${IMPORT_ROWS} rows`);
      return n === 0 ? 'before' : 'after';
    });
  });

  it('score: whole batches only; a rerun scores the rest, nothing twice', async (t) => {
    const scores = (root: string): number => read(join(root, '.aries/aries.db'), (db) => (db.prepare('SELECT COUNT(*) AS n FROM scores').get() as { n: number }).n);
    await trials(t, 'score', ['score'], (root) => scores(root) > 0, (root) => {
      const n = scores(root);
      assert.ok(n % 256 === 0 || n === STEPS, `a killed scoring left ${n} scores: not a whole number of 256-step batches`);
      return n === 0 ? 'before' : n === STEPS ? 'after' : 'mid';
    });
  });

  it('select: one transaction, every selection or none', async (t) => {
    await trials(t, 'select', ['select'], null, (root) => {
      const n = read(join(root, '.aries/aries.db'), (db) => (db.prepare('SELECT COUNT(*) AS n FROM selections').get() as { n: number }).n);
      assert.ok(n === 0 || n === PROMPTS * 2, `a killed selection left ${n} of ${PROMPTS * 2} selections`);
      return n === 0 ? 'before' : 'after';
    });
  });

  it('export: no partial file under a name that looks complete; a rerun writes the same dataset', async (t) => {
    const dataDir = (root: string): string => join(root, '.aries/exports/round-1/data');
    const temp = (root: string): string[] => findFiles(join(root, '.aries'), (n) => n.includes('.tmp-'));
    await trials(t, 'export', ['export'], (root) => temp(root).length > 0, (root) => {
      const left = temp(root);
      for (const f of left) assert.ok(f.split('/').pop()!.startsWith('.'), `a killed export left ${f}: a temp file that dataset loaders read (trl --dataset_name ${dataDir(root)} loads every train* file that is not hidden)`);
      const data = join(dataDir(root), 'train.jsonl');
      if (existsSync(data)) assert.equal(sha(readFileSync(data)), sha(readFileSync(join(dataDir(clean.export!), 'train.jsonl'))), 'a killed export left a partial train.jsonl');
      const manifest = join(root, '.aries/exports/round-1/manifest.json');
      if (existsSync(manifest)) assert.equal((JSON.parse(readFileSync(manifest, 'utf8')) as { sha256: string }).sha256, sha(readFileSync(data)));
      return left.length > 0 ? 'mid' : existsSync(data) ? 'after' : 'before';
    });
  });

  function checkExport(root: string, cleanRoot: string): void {
    const data = readFileSync(join(root, '.aries/exports/round-1/data/train.jsonl'));
    assert.equal(sha(data), sha(readFileSync(join(cleanRoot, '.aries/exports/round-1/data/train.jsonl'))), 'the re-export differs from the uninterrupted one');
    const manifest = JSON.parse(readFileSync(join(root, '.aries/exports/round-1/manifest.json'), 'utf8')) as { sha256: string; exportId: number };
    assert.equal(manifest.sha256, sha(data));
    const latest = read(join(root, '.aries/aries.db'), (db) => db.prepare('SELECT id, sha256 FROM exports ORDER BY id DESC LIMIT 1').get() as { id: number; sha256: string });
    assert.deepEqual([latest.id, latest.sha256], [manifest.exportId, manifest.sha256], 'the database, the manifest and the file agree');
    assert.deepEqual(findFiles(join(root, '.aries'), (n) => n.includes('.tmp-')), [], 'a finished export leaves no temp files behind');
  }
});
