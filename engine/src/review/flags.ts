import type { Db } from '../store/db';

/**
 * The review flags on trajectories (migration 2): the exported strategy's outcome and margin,
 * whether strategies disagree, and the live override. Recomputed from selections and overrides
 * after every write to them, so list filters and counts read one index.
 */
const SELECTION_FLAGS = `
UPDATE trajectories SET
  auto_status = (SELECT s.status FROM selections s WHERE s.trajectory_id = trajectories.id AND s.strategy = @strategy),
  margin = (SELECT s.margin FROM selections s WHERE s.trajectory_id = trajectories.id AND s.strategy = @strategy),
  disagreement = (SELECT COUNT(DISTINCT s.status || ':' || IFNULL(s.chosen_step_id, '') || ':' || IFNULL(s.rejected_step_id, '')) > 1
                  FROM selections s WHERE s.trajectory_id = trajectories.id)
WHERE round_id = @round`;

export function refreshSelectionFlags(db: Db, roundId: number, strategy: string): void {
  db.prepare(SELECTION_FLAGS).run({ round: roundId, strategy });
}

export function refreshOverrideFlag(db: Db, trajectoryId: number): void {
  db.prepare(
    `UPDATE trajectories SET override_action =
       (SELECT o.action FROM overrides o WHERE o.trajectory_id = trajectories.id AND o.undone_at IS NULL ORDER BY o.id DESC LIMIT 1)
     WHERE id = ?`,
  ).run(trajectoryId);
}
