import { EngineError } from '../errors';
import { currentModel } from '../model/registry';
import type { Project } from '../project/project';
import { type Db, now } from '../store/db';
import { templateIdentity } from '../refinement/template';

export type RoundStatus = 'collecting' | 'collected' | 'scored' | 'selected' | 'exported' | 'training' | 'trained' | 'failed';

export interface RoundRow {
  id: number;
  idx: number;
  policy_model_id: number;
  status: RoundStatus;
  config_json: string;
  timings_json: string;
  error: string | null;
  created_at: string;
  updated_at: string;
}

/** The round to work on: the newest one unless it has finished (trained), then a new one. */
export function openRound(p: Project): RoundRow {
  const latest = latestRound(p.db);
  if (latest && latest.status !== 'trained') return latest;
  const model = currentModel(p.db);
  if (!model) throw new EngineError('NOT_FOUND', 'the project has no current model', 'check "model" in aries.json');
  const idx = (latest?.idx ?? 0) + 1;
  const snapshot = { generation: p.config.generation, selection: p.config.selection, export: p.config.export, ...templateIdentity(p.template) };
  const t = now();
  const info = p.db
    .prepare('INSERT INTO rounds (idx, policy_model_id, status, config_json, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)')
    .run(idx, model.id, 'collecting', JSON.stringify(snapshot), t, t);
  return getRound(p.db, Number(info.lastInsertRowid));
}

/** The policy of the round openRound would return, without creating a round (to check its model first). */
export function openRoundPolicy(p: Project): number {
  const latest = latestRound(p.db);
  if (latest && latest.status !== 'trained') return latest.policy_model_id;
  const model = currentModel(p.db);
  if (!model) throw new EngineError('NOT_FOUND', 'the project has no current model', 'check "model" in aries.json');
  return model.id;
}

/**
 * The round that score / select / export / train work on: the newest one, whatever its status
 * (a trained round can be scored, selected and exported again, e.g. after curators' decisions).
 * Only generate starts a new round (openRound).
 */
export function workingRound(p: Project): RoundRow {
  const latest = latestRound(p.db);
  if (!latest) throw new EngineError('NOT_FOUND', 'the project has no round yet', 'run `aries generate` (ARIES: Generate Trajectories) to start round 1');
  return latest;
}

export function latestRound(db: Db): RoundRow | null {
  return (db.prepare('SELECT * FROM rounds ORDER BY idx DESC LIMIT 1').get() as RoundRow | undefined) ?? null;
}

export function getRound(db: Db, id: number): RoundRow {
  const row = db.prepare('SELECT * FROM rounds WHERE id = ?').get(id) as RoundRow | undefined;
  if (!row) throw new EngineError('NOT_FOUND', `round ${id} does not exist`, 'list rounds with `aries stats`');
  return row;
}

export function listRounds(db: Db): RoundRow[] {
  return db.prepare('SELECT * FROM rounds ORDER BY idx').all() as RoundRow[];
}

export function setRoundStatus(db: Db, id: number, status: RoundStatus, error: string | null = null): void {
  db.prepare('UPDATE rounds SET status = ?, error = ?, updated_at = ? WHERE id = ?').run(status, error, now(), id);
}

/** Adds seconds to a phase's running total for the round (a retried phase adds up). */
export function addPhaseTime(db: Db, id: number, phase: string, seconds: number): void {
  const row = db.prepare('SELECT timings_json FROM rounds WHERE id = ?').get(id) as { timings_json: string } | undefined;
  const timings = JSON.parse(row?.timings_json ?? '{}') as Record<string, number>;
  timings[phase] = (timings[phase] ?? 0) + seconds;
  db.prepare('UPDATE rounds SET timings_json = ? WHERE id = ?').run(JSON.stringify(timings), id);
}
