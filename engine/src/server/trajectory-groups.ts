import { EngineError } from '../errors';
import { listTrajectories, resolveRound } from '../review/queries';
import type { Db } from '../store/db';
import type { TrajectoryGroupName, TrajectoryGroups } from '../protocol/engine-types';
export type { TrajectoryGroupName, TrajectoryGroupItem, TrajectoryGroups } from '../protocol/engine-types';

export const TRAJECTORY_GROUPS: readonly TrajectoryGroupName[] = ['needs-review', 'auto-selected', 'overridden', 'skipped'];

interface SelectionRow {
  trajectory_id: number;
  strategy: string;
  status: 'pair' | 'skip';
  c: number | null;
  r: number | null;
  reason: string;
}

/**
 * Groups a round's trajectories (the newest round when `round` is omitted); at most `limit` items
 * per group. The grouping is the review list's (review/queries.ts), read from the review flags, so
 * the view and the review panel always agree; here each item also gets a line saying why.
 */
export function trajectoryGroups(db: Db, strategy: string, round?: number, limit = 50): TrajectoryGroups {
  if (!Number.isInteger(limit) || limit < 0 || limit > 500) throw new EngineError('BAD_INPUT', `limit must be 0..500, got ${limit}`);
  const r = resolveRound(db, round ?? null);
  if (!r) return { round: null, strategy, total: 0, groups: TRAJECTORY_GROUPS.map((name) => ({ name, count: 0, items: [] })) };
  const pages = TRAJECTORY_GROUPS.map((name) => ({ name, page: listTrajectories(db, { round: r.idx, filter: name, offset: 0, limit: Math.max(limit, 1) }) }));
  const ids = pages.flatMap((p) => p.page.items.map((i) => i.id));
  const selections = new Map<number, SelectionRow[]>();
  const overrides = new Map<number, { action: string; curator: string }>();
  if (ids.length) {
    const marks = ids.map(() => '?').join(',');
    for (const s of db
      .prepare(
        `SELECT s.trajectory_id, s.strategy, s.status, sc.idx AS c, sr.idx AS r, s.reason FROM selections s
         LEFT JOIN steps sc ON sc.id = s.chosen_step_id LEFT JOIN steps sr ON sr.id = s.rejected_step_id
         WHERE s.trajectory_id IN (${marks}) ORDER BY s.strategy`,
      )
      .all(...ids) as SelectionRow[]) {
      selections.set(s.trajectory_id, [...(selections.get(s.trajectory_id) ?? []), s]);
    }
    for (const o of db
      .prepare(`SELECT o.trajectory_id, o.action, o.curator FROM overrides o WHERE o.trajectory_id IN (${marks}) AND o.undone_at IS NULL ORDER BY o.id`)
      .all(...ids) as { trajectory_id: number; action: string; curator: string }[]) {
      overrides.set(o.trajectory_id, { action: o.action, curator: o.curator });
    }
  }
  const groups = pages.map(({ name, page }) => ({
    name,
    count: page.total,
    items: page.items.slice(0, limit).map((i) => ({
      id: i.id, seq: i.seq, promptId: i.promptId, preview: i.preview.slice(0, 120), steps: i.steps,
      detail: detail(name, selections.get(i.id) ?? [], strategy, overrides.get(i.id)),
    })),
  }));
  return { round: r.idx, strategy, total: pages[0]?.page.all ?? 0, groups };
}

function describe(s: SelectionRow): string {
  return s.status === 'pair' ? `${s.strategy}: step ${s.c} over step ${s.r}` : `${s.strategy} skip: ${s.reason}`;
}

function detail(group: TrajectoryGroupName, sel: SelectionRow[], strategy: string, override: { action: string; curator: string } | undefined): string {
  if (group === 'overridden') return `${override?.action ?? 'decided'} by ${override?.curator ?? 'a curator'}`;
  const exported = sel.find((s) => s.strategy === strategy);
  if (group === 'needs-review') {
    if (!exported) return sel.length ? `no ${strategy} selection yet; ${sel.map(describe).join('; ')}` : 'not selected yet';
    return `strategies disagree: ${sel.map(describe).join('; ')}`;
  }
  return exported ? describe(exported) : '';
}
