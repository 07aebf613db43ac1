import { badInput, EngineError } from '../errors';
import { type Db, now } from '../store/db';

export interface EditedStep {
  id: number;
  trajectoryId: number;
  idx: number;
  editedFromStepId: number;
}

const MAX_EDIT_CHARS = 200_000;

/**
 * A curator's edit of a response: a new step (origin 'curator') at the same position that points
 * at the step it was edited from. The original stays as it was; overrides can then choose the
 * edited step as chosen or rejected.
 */
export function editStep(db: Db, stepId: number, text: string, curator: string): EditedStep {
  if (!curator.trim()) throw badInput('an edit needs a curator name');
  if (!text.trim()) throw badInput('the edited response is empty', 'write a response, or discard the trajectory instead');
  if (text.length > MAX_EDIT_CHARS) throw badInput(`the edited response has ${text.length} characters; the limit is ${MAX_EDIT_CHARS}`);
  const source = db.prepare('SELECT id, trajectory_id, idx FROM steps WHERE id = ?').get(stepId) as { id: number; trajectory_id: number; idx: number } | undefined;
  if (!source) throw new EngineError('NOT_FOUND', `step ${stepId} does not exist`);
  const owner = db.prepare('SELECT round_id FROM trajectories WHERE id = ?').get(source.trajectory_id) as { round_id: number | null };
  if (owner.round_id === null) throw badInput(`step ${stepId} belongs to an evaluation; only round trajectories are reviewed`);
  const info = db
    .prepare("INSERT INTO steps (trajectory_id, idx, origin, edited_from_step_id, curator, text, created_at) VALUES (?, ?, 'curator', ?, ?, ?, ?)")
    .run(source.trajectory_id, source.idx, source.id, curator, text, now());
  return { id: Number(info.lastInsertRowid), trajectoryId: source.trajectory_id, idx: source.idx, editedFromStepId: source.id };
}
