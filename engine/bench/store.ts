import { spawnSync } from 'node:child_process';
import { copyFileSync, createWriteStream, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportRound } from '../src/export/dataset';
import { silentLogger } from '../src/log';
import { closeProject, openProject } from '../src/project/project';
import { type Project } from '../src/project/project';
import { getTrajectory, type ListQuery, listTrajectories, type ReviewFilter } from '../src/review/queries';
import { openRound } from '../src/round/rounds';
import { selectRound } from '../src/selection/select-round';
import { openDb, type Db } from '../src/store/db';
import { createTrajectories, type NewStep, saveSteps } from '../src/trajectory/store';
import { fmt, interleaved, median } from './measure';
import { atLeast, atMost, info, skipped, type Finding, type SectionResult } from './report';

/**
 * The store: ingesting steps through the engine's real write path (saveSteps, one transaction per
 * batch as the onnx collector commits them) against the sqlite3 command-line shell importing the
 * same rows into the same schema (FTS triggers included), each into a copy of the same seeded
 * database; then exporting the round's ARIES dataset (exportRound) from the ingested database.
 */

export interface StorePlan {
  steps: number;
  /** Steps per trajectory (answer + K refinements). */
  stepsPerTrajectory: number;
  /** Steps per saveSteps call (the collector's chunk). */
  batch: number;
  reps: number;
}

const SECTION = 'store';
const SAMPLING = { temperature: 0.8, topP: 0.95, topK: 0, maxNewTokens: 256, stop: [] as string[] };
const WORDS = ['the', 'answer', 'is', 'because', 'we', 'add', 'carry', 'one', 'check', 'again', 'so', 'total', 'result', 'first', 'then'];

/** Why the sqlite3 shell cannot be used, or undefined when it can. */
export function sqliteCliMissing(): string | undefined {
  const probe = spawnSync('sqlite3', ['-version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return 'the sqlite3 command-line shell is not installed (apt-get install sqlite3)';
  return undefined;
}

/** A step's text: deterministic, 40–200 characters, different per trajectory and step. */
function stepText(trajectory: number, idx: number): string {
  let h = Math.imul(trajectory + 1, 0x9e3779b1) ^ Math.imul(idx + 7, 0x85ebca6b);
  const words = 8 + ((h >>> 0) % 28);
  const out: string[] = [`${(trajectory * 7 + idx * 13) % 100}:`];
  for (let i = 0; i < words; i++) {
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
    out.push(WORDS[(h >>> 0) % WORDS.length]!);
  }
  return out.join(' ');
}

interface Seed {
  dir: string;
  root: string;
  /** The seeded database (project, model, round, prompts and open trajectories; no steps). */
  template: string;
  roundId: number;
  modelId: number;
  trajectoryIds: number[];
}

/** A project whose round has one open trajectory per prompt, as collection finds it. */
function seed(plan: StorePlan): Seed {
  const dir = mkdtempSync(join(tmpdir(), 'aries-bench-store-'));
  const root = join(dir, 'project');
  mkdirSync(root);
  writeFileSync(join(root, 'aries.json'), JSON.stringify({ name: 'bench-store', model: 'model', selection: { strategy: 'rule', compute: ['rule'] } }));
  const p = openProject(root, silentLogger, { dbPath: join(dir, 'template.db') });
  const trajectories = Math.ceil(plan.steps / plan.stepsPerTrajectory);
  // One statement for all prompts: the prompts_fts trigger then indexes them in one go (setup, not timed).
  p.db
    .prepare(
      `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
       INSERT INTO prompts (id, content_hash, prompt_json, search_text, reference, split, source, seq, created_at)
       SELECT 'p' || i, 'h' || i, json_quote((i % 97) || '+' || (i % 89) || '='), (i % 97) || '+' || (i % 89) || '=', CAST(i % 97 + i % 89 AS TEXT), 'train', 'bench', i, ? FROM n`,
    )
    .run(trajectories, new Date().toISOString());
  const ids = Array.from({ length: trajectories }, (_, i) => `p${i}`);
  const round = openRound(p);
  createTrajectories(p.db, { kind: 'round', id: round.id }, ids, round.policy_model_id);
  const trajectoryIds = (p.db.prepare('SELECT id FROM trajectories WHERE round_id = ? ORDER BY seq').all(round.id) as { id: number }[]).map((r) => r.id);
  p.db.pragma('wal_checkpoint(TRUNCATE)');
  closeProject(p);
  return { dir, root, template: join(dir, 'template.db'), roundId: round.id, modelId: round.policy_model_id, trajectoryIds };
}

/** The steps in the order the collector writes them: chunk by chunk, step index by step index. */
function* stepBatches(s: Seed, plan: StorePlan): Generator<NewStep[]> {
  const k = plan.stepsPerTrajectory;
  const chunk = Math.max(1, plan.batch);
  let left = plan.steps;
  for (let start = 0; start < s.trajectoryIds.length && left > 0; start += chunk) {
    const members = s.trajectoryIds.slice(start, start + chunk);
    for (let idx = 0; idx < k && left > 0; idx++) {
      const batch = members.slice(0, left).map(
        (trajectoryId): NewStep => ({
          trajectoryId, idx, text: stepText(trajectoryId, idx), promptTokens: 40 + idx * 60, completionTokens: 30, finishReason: 'stop', modelId: s.modelId,
          sampling: SAMPLING, seed: trajectoryId * 16 + idx, durationMs: 12.5, completes: idx === k - 1 ? 'max_steps' : null,
        }),
      );
      left -= batch.length;
      yield batch;
    }
  }
}

/** The same rows as CSV for the shell: the steps table's columns in order, ids as the engine assigns them. */
async function writeCsv(s: Seed, plan: StorePlan, path: string): Promise<void> {
  const out = createWriteStream(path);
  const at = new Date().toISOString();
  const quote = (v: string) => (/[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
  const samplingJson = quote(JSON.stringify(SAMPLING));
  let id = 0;
  for (const batch of stepBatches(s, plan)) {
    const lines = batch.map(
      (st) =>
        `${++id},${st.trajectoryId},${st.idx},model,,,${quote(st.text)},${st.promptTokens},${st.completionTokens},${st.finishReason},${st.modelId},${samplingJson},${st.seed},${st.durationMs},${at}\n`,
    );
    if (!out.write(lines.join(''))) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
}

/** The shell's script: the engine's pragmas, .import into a staging table (CSV has no NULL), one INSERT … SELECT, close the trajectories. */
function shellScript(csv: string, roundId: number): string {
  return [
    'PRAGMA journal_mode = WAL;',
    'PRAGMA synchronous = NORMAL;',
    'PRAGMA foreign_keys = ON;',
    'CREATE TEMP TABLE staging (id, trajectory_id, idx, origin, edited_from_step_id, curator, text, prompt_tokens, completion_tokens, finish_reason, model_id, sampling_json, seed, duration_ms, created_at);',
    `.import --csv '${csv}' staging`,
    'BEGIN;',
    `INSERT INTO steps (id, trajectory_id, idx, origin, edited_from_step_id, curator, text, prompt_tokens, completion_tokens, finish_reason, model_id, sampling_json, seed, duration_ms, created_at)
       SELECT id, trajectory_id, idx, origin, NULLIF(edited_from_step_id, ''), NULLIF(curator, ''), text, prompt_tokens, completion_tokens, finish_reason, model_id, sampling_json, seed, duration_ms, created_at FROM staging;`,
    `UPDATE trajectories SET status = 'complete', stop_reason = 'max_steps' WHERE round_id = ${roundId};`,
    'COMMIT;',
    '',
  ].join('\n');
}

export async function storeBench(plan: StorePlan, log: (line: string) => void): Promise<SectionResult> {
  const missing = sqliteCliMissing();
  const findings: Finding[] = [];
  const notes: string[] = [];
  log(`  seeding a round of ${fmt.int(Math.ceil(plan.steps / plan.stepsPerTrajectory))} open trajectories`);
  const s = seed(plan);
  try {
    const csv = join(s.dir, 'steps.csv');
    if (!missing) await writeCsv(s, plan, csv);
    let lastEngineDb = '';
    let rep = 0;
    const runs = await interleaved(plan.reps, {
      engine: async () => {
        const path = join(s.dir, `engine-${rep++}.db`);
        copyFileSync(s.template, path);
        // The engine's own open (WAL, synchronous NORMAL, foreign keys), then saveSteps per batch.
        const db = openDb(path);
        const started = performance.now();
        for (const batch of stepBatches(s, plan)) saveSteps(db, batch);
        const ms = performance.now() - started;
        checkCount(db, plan.steps, 'engine');
        db.close();
        if (lastEngineDb) removeDb(lastEngineDb);
        lastEngineDb = path;
        log(`    engine: ${fmt.int(plan.steps)} steps in ${fmt.ms(ms)}`);
        return ms;
      },
      ...(missing
        ? {}
        : {
            shell: async () => {
              const path = join(s.dir, 'shell.db');
              copyFileSync(s.template, path);
              const started = performance.now();
              const run = spawnSync('sqlite3', ['-bail', path], { input: shellScript(csv, s.roundId), encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
              const ms = performance.now() - started;
              if (run.status !== 0) throw new Error(`sqlite3 .import failed (exit ${run.status}): ${run.stderr}`);
              const db = openDb(path);
              checkCount(db, plan.steps, 'sqlite3');
              db.close();
              removeDb(path);
              log(`    sqlite3: ${fmt.int(plan.steps)} steps in ${fmt.ms(ms)}`);
              return ms;
            },
          }),
    } as Record<string, () => Promise<number>>);
    const engineMs = median(runs.engine!);
    const engineRate = (plan.steps / engineMs) * 1000;
    const subject = `ingest ${fmt.int(plan.steps)} steps`;
    if (missing) {
      findings.push(info(SECTION, `${subject} (engine)`, `${fmt.int(engineRate)} steps/s`));
      findings.push(skipped(SECTION, `${subject} vs sqlite3 .import`, missing));
    } else {
      const shellMs = median(runs.shell!);
      const shellRate = (plan.steps / shellMs) * 1000;
      findings.push(atLeast(SECTION, `${subject}: steps/s`, `${fmt.int(engineRate)} steps/s`, `sqlite3 .import ${fmt.int(shellRate)} steps/s`, engineRate / shellRate, 0.5));
    }
    notes.push(
      `- Ingest: ${fmt.int(plan.steps)} steps (${plan.stepsPerTrajectory} per trajectory, texts of 40–200 characters), saveSteps (trajectory/store.ts) in batches of ${plan.batch} as the onnx collector commits them, ` +
        `each batch one transaction, into the engine's database (openDb: WAL, synchronous NORMAL, foreign keys, the FTS5 triggers of migration 2). ` +
        `Engine runs: ${runs.engine!.map(fmt.ms).join(', ')}. ` +
        (missing
          ? `sqlite3 side skipped: ${missing}.`
          : `sqlite3 ${sqliteVersion()}: the same rows as CSV, \`.import --csv\` into a staging table, then one INSERT … SELECT into steps (NULLIF for the two NULL columns) and the UPDATE that closes the trajectories, same pragmas, in one transaction; runs: ${runs.shell!.map(fmt.ms).join(', ')}. CSV writing is not timed.`),
    );

    // Export from the last ingested database: rule selection (setup), then the timed export.
    const p = openProject(s.root, silentLogger, { dbPath: lastEngineDb });
    try {
      const selectStarted = performance.now();
      selectRound(p.db, s.roundId, ['rule'], p.config.selection);
      const selectMs = performance.now() - selectStarted;
      const exports: { ms: number; rows: number; bytes: number }[] = [];
      for (let i = 0; i < Math.min(plan.reps, 2); i++) {
        const started = performance.now();
        const result = exportRound(p, s.roundId);
        const ms = performance.now() - started;
        exports.push({ ms, rows: result.counts.total, bytes: statSync(result.path).size });
      }
      const ms = median(exports.map((e) => e.ms));
      const rows = exports[0]!.rows;
      findings.push(info(SECTION, `export ${fmt.int(rows)} rows`, `${fmt.int((rows / ms) * 1000)} rows/s`, `${fmt.num(exports[0]!.bytes / 2 ** 20, 0)} MiB in ${fmt.ms(ms)}`));
      findings.push(info(SECTION, `select (rule) ${fmt.int(s.trajectoryIds.length)} trajectories`, `${fmt.int((s.trajectoryIds.length / selectMs) * 1000)} trajectories/s`, fmt.ms(selectMs)));
      notes.push(
        `- Export: exportRound (export/dataset.ts) of the ingested round after rule selection: ${fmt.int(rows)} rows (direct + refine per pair), written atomically with its manifest; runs: ${exports.map((e) => fmt.ms(e.ms)).join(', ')}.`,
      );
      const review = reviewQueries(p, 20);
      findings.push(...review.findings);
      notes.push(...review.notes);
    } finally {
      closeProject(p);
    }
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
  return { findings, notes };
}

/**
 * The review panel's queries on the ingested round (after selection, so the review flags are
 * set): what opening the panel asks (the first page of "needs review" and the first trajectory in
 * full), a deep page of a filter, and full-text searches. Each is timed `runs` times; p50 / p95
 * against the 50 ms budget (300 ms for the whole first paint's data).
 */
function reviewQueries(p: Project, runs: number): SectionResult {
  const findings: Finding[] = [];
  const time = (work: () => unknown): { p50: number; p95: number } => {
    const ms: number[] = [];
    for (let i = 0; i < runs; i++) {
      const started = performance.now();
      work();
      ms.push(performance.now() - started);
    }
    ms.sort((a, b) => a - b);
    return { p50: ms[Math.floor(ms.length / 2)] ?? 0, p95: ms[Math.min(ms.length - 1, Math.ceil(ms.length * 0.95) - 1)] ?? 0 };
  };
  const steps = (p.db.prepare('SELECT COUNT(*) AS n FROM steps').get() as { n: number }).n;
  const q = (filter: ReviewFilter, extra: Partial<ListQuery> = {}): ListQuery => ({ round: null, filter, offset: 0, limit: 200, ...extra });
  const cases: [string, () => unknown, number][] = [
    ['first paint data: first page + the first trajectory in full', () => {
      const page = listTrajectories(p.db, q('all'));
      const first = page.items[0];
      if (first) getTrajectory(p.db, first.id, p.template, p.config.selection.strategy);
    }, 300],
    ['first page (200 rows, all)', () => listTrajectories(p.db, q('all')), 50],
    ['next page deep in the list while scrolling (auto-selected, after seq 150,000)', () => listTrajectories(p.db, q('auto-selected', { afterSeq: 150_000 })), 50],
    ['jump deep into the list (auto-selected, offset 100,000)', () => listTrajectories(p.db, q('auto-selected', { offset: 100_000 })), 50],
    ['filtered page (skipped)', () => listTrajectories(p.db, q('skipped')), 50],
    ['search ("53", capped at the first 2,000 matches)', () => listTrajectories(p.db, q('all', { search: '53' })), 50],
    ['search, two words ("53 carry")', () => listTrajectories(p.db, q('all', { search: '53 carry' })), 50],
    ['trajectory detail', () => getTrajectory(p.db, 1, p.template, p.config.selection.strategy), 50],
  ];
  const rows: string[] = [];
  for (const [name, work, budget] of cases) {
    const t = time(work);
    findings.push(atMost(SECTION, `review: ${name}`, `p50 ${fmt.ms(t.p50)} · p95 ${fmt.ms(t.p95)}`, `budget ${budget} ms`, t.p95 / budget, 1));
    rows.push(`${name}: p50 ${fmt.ms(t.p50)}, p95 ${fmt.ms(t.p95)}`);
  }
  const sample = listTrajectories(p.db, q('all', { search: '53' }));
  return {
    findings,
    notes: [
      `- Review panel queries (review/queries.ts, what the review webview asks through the engine) on the ingested round: ${fmt.int(steps)} steps, ${runs} runs each, timed in-process (no JSON-RPC or webview). ` +
        `The search "53" matches ${fmt.int(sample.total)} trajectories. ${rows.join('; ')}. ` +
        'The browser side (virtualised list, only visible rows in the DOM) is exercised by webview/test/review-browser.test.ts.',
    ],
  };
}

function checkCount(db: Db, expected: number, who: string): void {
  const n = (db.prepare('SELECT COUNT(*) AS n FROM steps').get() as { n: number }).n;
  if (n !== expected) throw new Error(`store bench: ${who} wrote ${n} steps, expected ${expected}`);
}

function removeDb(path: string): void {
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
}

function sqliteVersion(): string {
  return spawnSync('sqlite3', ['-version'], { encoding: 'utf8' }).stdout.split(' ')[0] ?? '?';
}

export function sqliteCliVersion(): string | undefined {
  return sqliteCliMissing() ? undefined : sqliteVersion();
}

