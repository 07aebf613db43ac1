import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { refreshOverrideFlag, refreshSelectionFlags } from '../src/review/flags';
import { listExports, listTrainingRuns } from '../src/server/run-history';
import { trajectoryGroups } from '../src/server/trajectory-groups';
import type { Db } from '../src/store/db';
import { tempProject } from './support/temp-project';

/** A round with five trajectories of three steps each, one per group case, written as the phases would. */
function seedRound(db: Db): { trajectories: number[]; steps: (t: number, idx: number) => number } {
  const at = '2026-01-01T00:00:00Z';
  const model = (db.prepare('SELECT id FROM models WHERE is_current = 1').get() as { id: number }).id;
  const round = Number(db.prepare("INSERT INTO rounds (idx, policy_model_id, status, config_json, created_at, updated_at) VALUES (1, ?, 'selected', '{}', ?, ?)").run(model, at, at).lastInsertRowid);
  const stepIds = new Map<string, number>();
  const trajectories: number[] = [];
  for (let i = 0; i < 5; i++) {
    db.prepare("INSERT INTO prompts (id, content_hash, prompt_json, search_text, split, source, seq, created_at) VALUES (?, ?, ?, ?, 'train', 'p.jsonl:1', ?, ?)")
      .run(`p${i}`, `h${i}`, JSON.stringify(`${i}+1=`), `${i}+1=`, i, at);
    const t = Number(db.prepare("INSERT INTO trajectories (round_id, prompt_id, model_id, status, seq, created_at) VALUES (?, ?, ?, 'complete', ?, ?)").run(round, `p${i}`, model, i, at).lastInsertRowid);
    trajectories.push(t);
    for (let k = 0; k < 3; k++) stepIds.set(`${t}:${k}`, Number(db.prepare('INSERT INTO steps (trajectory_id, idx, text, model_id, created_at) VALUES (?, ?, ?, ?, ?)').run(t, k, `answer ${k}`, model, at).lastInsertRowid));
  }
  // An open (incomplete) trajectory is not shown.
  db.prepare("INSERT INTO prompts (id, content_hash, prompt_json, search_text, split, source, seq, created_at) VALUES ('open', 'ho', '\"x\"', 'x', 'train', 'p.jsonl:9', 9, ?)").run(at);
  db.prepare("INSERT INTO trajectories (round_id, prompt_id, model_id, status, seq, created_at) VALUES (?, 'open', ?, 'open', 9, ?)").run(round, model, at);
  return { trajectories, steps: (t, idx) => stepIds.get(`${t}:${idx}`)! };
}

describe('view requests (Trajectories, Exports, Training runs)', () => {
  it('groups trajectories into needs-review / auto-selected / overridden / skipped without overlap', () => {
    const { project, dispose } = tempProject();
    try {
      const db = project.db;
      const { trajectories: [agree, skipAll, disagree, overridden, unselected], steps } = seedRound(db);
      const select = db.prepare("INSERT INTO selections (trajectory_id, strategy, status, chosen_step_id, rejected_step_id, reason, margin, created_at) VALUES (?, ?, ?, ?, ?, ?, 1, '2026-01-01')");
      const pair = (t: number, strategy: string) => select.run(t, strategy, 'pair', steps(t, 2), steps(t, 0), 'better');
      const skip = (t: number, strategy: string) => select.run(t, strategy, 'skip', null, null, 'every step is correct');
      pair(agree!, 'verifier'); pair(agree!, 'rule');
      skip(skipAll!, 'verifier'); skip(skipAll!, 'rule');
      pair(disagree!, 'verifier'); skip(disagree!, 'rule');
      skip(overridden!, 'verifier'); skip(overridden!, 'rule');
      db.prepare("INSERT INTO overrides (trajectory_id, curator, action, chosen_step_id, rejected_step_id, created_at) VALUES (?, 'ana', 'pair', ?, ?, '2026-01-02')").run(overridden, steps(overridden!, 1), steps(overridden!, 0));
      void unselected;
      // Raw inserts (as above) bypass the domain functions that keep the review flags current.
      refreshSelectionFlags(db, 1, 'verifier');
      refreshOverrideFlag(db, overridden!);

      const g = trajectoryGroups(db, 'verifier');
      assert.equal(g.round, 1);
      assert.equal(g.total, 5);
      const by = Object.fromEntries(g.groups.map((x) => [x.name, x]));
      assert.deepEqual(g.groups.map((x) => x.name), ['needs-review', 'auto-selected', 'overridden', 'skipped']);
      assert.deepEqual(by['needs-review']!.items.map((i) => i.promptId), ['p2', 'p4']);
      assert.match(by['needs-review']!.items[0]!.detail, /strategies disagree: rule skip: every step is correct; verifier: step 2 over step 0/);
      assert.equal(by['needs-review']!.items[1]!.detail, 'not selected yet');
      assert.deepEqual(by['auto-selected']!.items.map((i) => [i.promptId, i.detail, i.steps]), [['p0', 'verifier: step 2 over step 0', 3]]);
      assert.deepEqual(by.overridden!.items.map((i) => [i.promptId, i.detail]), [['p3', 'pair by ana']]);
      assert.deepEqual(by.skipped!.items.map((i) => i.promptId), ['p1']);
      assert.equal(g.groups.reduce((n, x) => n + x.count, 0), 5);

      // An undone override no longer counts; the limit caps items, not counts.
      db.prepare("UPDATE overrides SET undone_at = '2026-01-03'").run();
      refreshOverrideFlag(db, overridden!);
      const after = trajectoryGroups(db, 'verifier', 1, 1);
      assert.equal(after.groups.find((x) => x.name === 'skipped')!.count, 2);
      assert.equal(after.groups.find((x) => x.name === 'skipped')!.items.length, 1);
      assert.equal(after.groups.find((x) => x.name === 'overridden')!.count, 0);
      assert.throws(() => trajectoryGroups(db, 'verifier', 7), /round 7 does not exist/);
      assert.throws(() => trajectoryGroups(db, 'verifier', 1, 501), /limit must be 0..500/);
    } finally {
      dispose();
    }
  });

  it('answers an empty project with no round and empty groups', () => {
    const { project, dispose } = tempProject();
    try {
      const g = trajectoryGroups(project.db, 'rule');
      assert.equal(g.round, null);
      assert.deepEqual(g.groups.map((x) => x.count), [0, 0, 0, 0]);
      assert.deepEqual(listExports(project.db), []);
      assert.deepEqual(listTrainingRuns(project.db), []);
    } finally {
      dispose();
    }
  });

  it('lists exports and training runs newest first, with the last metrics and the produced model', () => {
    const { project, dispose } = tempProject();
    try {
      const db = project.db;
      seedRound(db);
      const at = '2026-01-01T00:00:00Z';
      const counts = { total: 5, direct: 2, refine: 2, pairs: 2, skipped: 3, overridden: 0, byStrategy: { verifier: 2 } };
      for (const n of [1, 2]) db.prepare("INSERT INTO exports (round_id, path, sha256, counts_json, config_json, created_at) VALUES (1, ?, 'abc', ?, '{}', ?)").run(`/x/export-${n}.jsonl`, JSON.stringify(counts), at);
      const run = (status: string) =>
        Number(db.prepare("INSERT INTO training_runs (round_id, export_id, base_model_id, status, command_json, config_json, output_dir, log_path, started_at) VALUES (1, 2, 1, ?, '[]', '{}', '/x/out', '/x/train.log', ?)").run(status, at).lastInsertRowid);
      const failed = run('failed');
      db.prepare("UPDATE training_runs SET exit_code = 3, error = 'NaN loss' WHERE id = ?").run(failed);
      const ok = run('succeeded');
      const model = Number(db.prepare("INSERT INTO models (name, backend, path, parent_model_id, trained_in_round_id, training_run_id, created_at) VALUES ('round-1', 'onnx', '/x/out', 1, 1, ?, ?)").run(ok, at).lastInsertRowid);
      db.prepare('UPDATE training_runs SET output_model_id = ? WHERE id = ?').run(model, ok);
      for (const step of [1, 2]) db.prepare('INSERT INTO training_metrics (run_id, step, epoch, metrics_json) VALUES (?, ?, 0.5, ?)').run(ok, step, JSON.stringify({ type: 'log', step, loss: 0.7 / step, 'rewards/margins': step * 0.1 }));

      const exports = listExports(db);
      assert.deepEqual(exports.map((e) => [e.path, e.round, e.counts?.direct, e.counts?.keep]), [['/x/export-2.jsonl', 1, 2, 0], ['/x/export-1.jsonl', 1, 2, 0]], 'an export from before keep rows counts 0 of them');
      const runs = listTrainingRuns(db);
      assert.deepEqual(runs.map((r) => [r.id, r.status, r.model, r.baseModel]), [[ok, 'succeeded', 'round-1', 'base'], [failed, 'failed', null, 'base']]);
      assert.equal(runs[0]!.steps, 2);
      assert.deepEqual(runs[0]!.lastMetrics, { step: 2, loss: 0.35, 'rewards/margins': 0.2 });
      assert.equal(runs[1]!.lastMetrics, null);
      assert.equal(runs[1]!.error, 'NaN loss');
    } finally {
      dispose();
    }
  });
});
