import { badInput, EngineError } from '../errors';
import { refreshOverrideFlag } from '../review/flags';
import { type Db, now } from '../store/db';

/**
 * A curator's decision on a trajectory. Each row stores the pair it resolves to (or none for
 * tie / discard), so re-running automatic selection later never changes what a person decided.
 * The latest override of a trajectory that is not undone wins over every automatic selection.
 */
export type OverrideAction = 'accept' | 'pair' | 'swap' | 'tie' | 'discard';
export const OVERRIDE_ACTIONS: readonly OverrideAction[] = ['accept', 'pair', 'swap', 'tie', 'discard'];

export interface OverrideInput {
  trajectoryId: number;
  curator: string;
  action: OverrideAction;
  /** For 'pair': the steps the curator chose (any step of the trajectory, curated edits included). */
  chosenStepId?: number;
  rejectedStepId?: number;
  /** For accept / swap: the strategy whose selection is accepted or swapped. */
  strategy?: string;
  note?: string;
}

export interface OverrideRow {
  id: number;
  trajectory_id: number;
  curator: string;
  action: OverrideAction;
  chosen_step_id: number | null;
  rejected_step_id: number | null;
  selection_id: number | null;
  note: string | null;
  created_at: string;
  undone_at: string | null;
}

export function addOverride(db: Db, input: OverrideInput): OverrideRow {
  if (!OVERRIDE_ACTIONS.includes(input.action)) throw badInput(`override action "${input.action}" is unknown`, `use ${OVERRIDE_ACTIONS.join(', ')}`);
  if (!input.curator.trim()) throw badInput('an override needs a curator name');
  const trajectory = db.prepare('SELECT id FROM trajectories WHERE id = ? AND round_id IS NOT NULL').get(input.trajectoryId);
  if (!trajectory) throw new EngineError('NOT_FOUND', `trajectory ${input.trajectoryId} does not exist (or belongs to an evaluation)`);
  let chosen: number | null = null;
  let rejected: number | null = null;
  let selectionId: number | null = null;
  if (input.action === 'pair') {
    if (input.chosenStepId === undefined || input.rejectedStepId === undefined) throw badInput('action "pair" needs chosenStepId and rejectedStepId');
    if (input.chosenStepId === input.rejectedStepId) throw badInput('chosen and rejected must be different steps');
    for (const id of [input.chosenStepId, input.rejectedStepId]) {
      if (!db.prepare('SELECT 1 FROM steps WHERE id = ? AND trajectory_id = ?').get(id, input.trajectoryId)) {
        throw badInput(`step ${id} is not a step of trajectory ${input.trajectoryId}`);
      }
    }
    chosen = input.chosenStepId;
    rejected = input.rejectedStepId;
  } else if (input.action === 'accept' || input.action === 'swap') {
    const strategy = input.strategy ?? 'verifier';
    const sel = db.prepare('SELECT id, status, chosen_step_id, rejected_step_id FROM selections WHERE trajectory_id = ? AND strategy = ?').get(input.trajectoryId, strategy) as
      | { id: number; status: string; chosen_step_id: number | null; rejected_step_id: number | null }
      | undefined;
    if (!sel) throw badInput(`trajectory ${input.trajectoryId} has no "${strategy}" selection to ${input.action}`, 'run `aries select` first');
    if (sel.status !== 'pair' && input.action === 'swap') throw badInput(`the "${strategy}" selection of trajectory ${input.trajectoryId} skipped it; there is nothing to swap`, 'choose the pair by step instead');
    selectionId = sel.id;
    [chosen, rejected] = input.action === 'swap' ? [sel.rejected_step_id, sel.chosen_step_id] : [sel.chosen_step_id, sel.rejected_step_id];
  }
  return db.transaction(() => {
    const info = db
      .prepare('INSERT INTO overrides (trajectory_id, curator, action, chosen_step_id, rejected_step_id, selection_id, note, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(input.trajectoryId, input.curator, input.action, chosen, rejected, selectionId, input.note ?? null, now());
    refreshOverrideFlag(db, input.trajectoryId);
    return db.prepare('SELECT * FROM overrides WHERE id = ?').get(Number(info.lastInsertRowid)) as OverrideRow;
  })();
}

/** Undoes the curator's latest live override on the trajectory; returns it, or null if none. */
export function undoOverride(db: Db, trajectoryId: number, curator: string): OverrideRow | null {
  const row = db
    .prepare('SELECT * FROM overrides WHERE trajectory_id = ? AND curator = ? AND undone_at IS NULL ORDER BY id DESC LIMIT 1')
    .get(trajectoryId, curator) as OverrideRow | undefined;
  if (!row) return null;
  const at = now();
  db.transaction(() => {
    db.prepare('UPDATE overrides SET undone_at = ? WHERE id = ?').run(at, row.id);
    refreshOverrideFlag(db, trajectoryId);
  })();
  return { ...row, undone_at: at };
}
