import { cpSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { sleep } from './workbench';

/**
 * What the end-to-end test reads from the project's SQLite file while VS Code drives the engine:
 * the stored config, row counts, waiting on a job's rows (not on a fixed time), and the round's
 * state saved next to the screenshots when a run fails.
 */

export type StoredConfig = { generation: { promptsPerRound: number }; selection?: { strategy: string }; scoring?: { scorers: string[] } };

export function readConfig(dbPath: string): StoredConfig | null {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const row = db.prepare('SELECT config_json FROM projects LIMIT 1').get() as { config_json: string } | undefined;
    return row ? (JSON.parse(row.config_json) as StoredConfig) : null;
  } finally {
    db.close();
  }
}

export function countRows(dbPath: string, sql: string): number {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare(sql).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** Polls `done` every half second until it holds; fails after ceilingMs with what it waited for. */
export async function waitForState(what: string, done: () => boolean, ceilingMs: number): Promise<void> {
  const deadline = Date.now() + ceilingMs;
  for (;;) {
    try {
      if (done()) return;
    } catch {
      // the database is being written (or not there yet); look again
    }
    if (Date.now() > deadline) throw new Error(`${what}: not there within ${ceilingMs / 1000} s (a hang, or the job never started)`);
    await sleep(500);
  }
}

/**
 * What a failed run leaves for whoever reads CI's output: the round's state from SQLite
 * (test-artifacts/e2e/round-state.json) and code-server's logs, the extension host's output
 * channels among them — the ARIES engine's log, the ARIES log — (test-artifacts/e2e/logs/).
 */
export function saveFailureState(tmp: string, dbPath: string, artifacts: string): void {
  try {
    if (existsSync(dbPath)) {
      const db = new Database(dbPath, { readonly: true });
      try {
        const q = (sql: string): unknown[] => db.prepare(sql).all();
        const state = {
          rounds: q('SELECT idx, status, error, created_at, updated_at FROM rounds ORDER BY idx'),
          byRound: q(`SELECT r.idx, t.status, COUNT(DISTINCT t.id) AS trajectories, COUNT(s.id) AS steps,
                        (SELECT COUNT(*) FROM scores c JOIN steps s2 ON s2.id = c.step_id JOIN trajectories t2 ON t2.id = s2.trajectory_id WHERE t2.round_id = r.id) AS scores,
                        (SELECT COUNT(*) FROM selections x JOIN trajectories t3 ON t3.id = x.trajectory_id WHERE t3.round_id = r.id) AS selections
                      FROM rounds r LEFT JOIN trajectories t ON t.round_id = r.id LEFT JOIN steps s ON s.trajectory_id = t.id GROUP BY r.idx, t.status`),
          trainingRuns: q('SELECT id, status, error, exit_code, started_at, finished_at FROM training_runs'),
          overrides: q('SELECT COUNT(*) AS n FROM overrides'),
        };
        writeFileSync(join(artifacts, 'round-state.json'), `${JSON.stringify(state, null, 2)}\n`);
      } finally {
        db.close();
      }
    }
    const logs = join(tmp, 'user-data', 'logs');
    if (existsSync(logs)) cpSync(logs, join(artifacts, 'logs'), { recursive: true });
    console.error(`failure state saved to ${artifacts} (round-state.json, logs/)`);
  } catch (err) {
    console.error(`could not save the failure state: ${String(err)}`);
  }
}
