import assert from 'node:assert/strict';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { cli, cliAsync, sumsProject } from './support/sums-project';

type StepRow = { prompt_id: string; idx: number; text: string; seed: number };

function steps(root: string): StepRow[] {
  const db = new Database(join(root, '.aries/aries.db'), { readonly: true });
  try {
    return db.prepare('SELECT t.prompt_id, s.idx, s.text, s.seed FROM steps s JOIN trajectories t ON t.id = s.trajectory_id WHERE t.round_id IS NOT NULL ORDER BY t.prompt_id, s.idx').all() as StepRow[];
  } finally {
    db.close();
  }
}

function stepCount(root: string): number {
  try {
    const db = new Database(join(root, '.aries/aries.db'), { readonly: true, fileMustExist: true });
    try {
      return (db.prepare('SELECT COUNT(*) AS n FROM steps').get() as { n: number }).n;
    } finally {
      db.close();
    }
  } catch {
    return 0; // not created yet
  }
}

/**
 * Kill -9 mid-collection, then a rerun: the rows equal an uninterrupted run. `killedWith` is how
 * the killed and resumed runs generate; the uninterrupted run uses the default (static batches).
 */
function killAndResume(title: string, killedWith: Record<string, unknown>, temperature: number): void {
  describe(title, () => {
    const generation = { refinements: 2, batchSize: 8, maxNewTokens: 12, temperature, stopWhenRepeated: false };
    const killed = sumsProject({ generation: { ...generation, ...killedWith } }, { train: 240, heldout: 4 });
    const clean = { root: `${killed.root}-clean` };
    after(() => {
      for (const r of [killed.root, clean.root]) if (r) rmSync(r, { recursive: true, force: true });
    });

    it('loses and duplicates nothing: the final rows equal an uninterrupted run', { skip: killed.skip, timeout: 300_000 }, async () => {
      cpSync(killed.root, clean.root, { recursive: true });
      const configPath = join(clean.root, 'aries.json');
      const config = JSON.parse(readFileSync(configPath, 'utf8')) as { generation: Record<string, unknown> };
      writeFileSync(configPath, JSON.stringify({ ...config, generation }, null, 2));
      const total = 240 * 3;
      const child = cliAsync(['generate', '-p', killed.root]);
      const exited = new Promise((r) => child.on('exit', r));
      let seen = 0;
      for (let i = 0; i < 3000 && seen < total / 3; i++) {
        await sleep(10);
        seen = stepCount(killed.root);
      }
      child.kill('SIGKILL');
      await exited;
      const atKill = stepCount(killed.root);
      assert.ok(atKill > 0 && atKill < total, `the kill should land mid-run (had ${atKill} of ${total} steps)`);
      const resumed = cli(['generate', '-p', killed.root]);
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.match(resumed.stdout, new RegExp(`${total - atKill} steps written`));
      const uninterrupted = cli(['generate', '-p', clean.root]);
      assert.equal(uninterrupted.code, 0, uninterrupted.stderr);
      const a = steps(killed.root);
      const b = steps(clean.root);
      assert.equal(a.length, total);
      assert.deepEqual(a, b);
      const check = cli(['stats', '--check', '--json', '-p', killed.root]);
      assert.equal(check.code, 0, check.stderr);
      assert.equal((JSON.parse(check.stdout) as { integrity: string }).integrity, 'ok');
    });
  });
}

killAndResume('kill -9 during generate, then rerun', {}, 1.0);
// Continuous batching (trajectories in flight, each step asked for as the last one lands), the
// prefix cache and speculation, killed and resumed: the same rows as static batches, uninterrupted.
killAndResume('kill -9 during generate with continuous batching, prefix cache and speculation, then rerun', { continuousBatching: true, speculativeTokens: 8 }, 0);
