import { EngineError } from '../errors';
import { type Db, now } from '../store/db';

/** Every policy the project has used, with lineage: which round's data and run trained it. */
export interface ModelRow {
  id: number;
  name: string;
  backend: string;
  path: string;
  parent_model_id: number | null;
  trained_in_round_id: number | null;
  training_run_id: number | null;
  is_current: number;
  created_at: string;
}

export interface NewModel {
  name: string;
  backend: string;
  path: string;
  parentModelId?: number | null;
  trainedInRoundId?: number | null;
  trainingRunId?: number | null;
}

export function registerModel(db: Db, m: NewModel, makeCurrent: boolean): ModelRow {
  return db.transaction(() => {
    if (makeCurrent) db.prepare('UPDATE models SET is_current = 0 WHERE is_current = 1').run();
    const info = db
      .prepare('INSERT INTO models (name, backend, path, parent_model_id, trained_in_round_id, training_run_id, is_current, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(m.name, m.backend, m.path, m.parentModelId ?? null, m.trainedInRoundId ?? null, m.trainingRunId ?? null, makeCurrent ? 1 : 0, now());
    return getModel(db, Number(info.lastInsertRowid));
  })();
}

export function getModel(db: Db, id: number): ModelRow {
  const row = db.prepare('SELECT * FROM models WHERE id = ?').get(id) as ModelRow | undefined;
  if (!row) throw new EngineError('NOT_FOUND', `model ${id} does not exist`, 'list models with `aries stats`');
  return row;
}

export function currentModel(db: Db): ModelRow | null {
  return (db.prepare('SELECT * FROM models WHERE is_current = 1').get() as ModelRow | undefined) ?? null;
}

export function listModels(db: Db): ModelRow[] {
  return db.prepare('SELECT * FROM models ORDER BY id').all() as ModelRow[];
}
