import { EngineError } from '../errors';
import type { Db } from '../store/db';

/**
 * The Trajectories view: a round's complete trajectories split into four groups that do not
 * overlap, so a curator sees where to look first.
 *   overridden     a person decided (the latest live override)
 *   needs-review   no override, and the computed strategies disagree or none has run yet
 *   auto-selected  no override, the exported strategy picked a pair and the others agree
 *   skipped        no override, the exported strategy skipped it and the others agree
 */
export type TrajectoryGroupName = 'needs-review' | 'auto-selected' | 'overridden' | 'skipped';
export const TRAJECTORY_GROUPS: readonly TrajectoryGroupName[] = ['needs-review', 'auto-selected', 'overridden', 'skipped'];

export interface TrajectoryGroupItem {
  id: number;
  seq: number;
  promptId: string;
  /** The start of the prompt text. */
  preview: string;
  /** Model steps: the first answer and its refinements. */
  steps: number;
  /** Why it is in its group, in a line ("verifier: step 2 over step 0", "rule skip: …"). */
  detail: string;
}

export interface TrajectoryGroups {
  /** Round index, or null when the project has no round yet. */
  round: number | null;
  /** The exported strategy the groups are judged by. */
  strategy: string;
  total: number;
  groups: { name: TrajectoryGroupName; count: number; items: TrajectoryGroupItem[] }[];
}

interface TrajectoryRow {
  id: number;
  seq: number;
  prompt_id: string;
  preview: string;
  steps: number;
  o_action: string | null;
  o_curator: string | null;
}

interface SelectionRow {
  trajectory_id: number;
  strategy: string;
  status: 'pair' | 'skip';
  c: number | null;
  r: number | null;
  reason: string;
}

/** Groups a round's trajectories (the newest round when `round` is omitted); at most `limit` items per group. */
export function trajectoryGroups(db: Db, strategy: string, round?: number, limit = 50): TrajectoryGroups {
  if (!Number.isInteger(limit) || limit < 0 || limit > 500) throw new EngineError('BAD_INPUT', `limit must be 0..500, got ${limit}`);
  const r = (round === undefined ? db.prepare('SELECT id, idx FROM rounds ORDER BY idx DESC LIMIT 1').get() : db.prepare('SELECT id, idx FROM rounds WHERE idx = ?').get(round)) as
    | { id: number; idx: number }
    | undefined;
  const groups = TRAJECTORY_GROUPS.map((name) => ({ name, count: 0, items: [] as TrajectoryGroupItem[] }));
  if (!r) {
    if (round !== undefined) throw new EngineError('NOT_FOUND', `round ${round} does not exist`, 'pick a round from the Rounds view');
    return { round: null, strategy, total: 0, groups };
  }
  const trajectories = db
    .prepare(
      `SELECT t.id, t.seq, t.prompt_id, substr(p.search_text, 1, 120) AS preview,
              (SELECT COUNT(*) FROM steps s WHERE s.trajectory_id = t.id AND s.origin = 'model') AS steps,
              o.action AS o_action, o.curator AS o_curator
       FROM trajectories t JOIN prompts p ON p.id = t.prompt_id
       LEFT JOIN overrides o ON o.id = (SELECT id FROM overrides WHERE trajectory_id = t.id AND undone_at IS NULL ORDER BY id DESC LIMIT 1)
       WHERE t.round_id = ? AND t.status = 'complete' ORDER BY t.seq`,
    )
    .all(r.id) as TrajectoryRow[];
  const selections = new Map<number, SelectionRow[]>();
  const rows = db
    .prepare(
      `SELECT s.trajectory_id, s.strategy, s.status, sc.idx AS c, sr.idx AS r, s.reason FROM selections s
       JOIN trajectories t ON t.id = s.trajectory_id
       LEFT JOIN steps sc ON sc.id = s.chosen_step_id LEFT JOIN steps sr ON sr.id = s.rejected_step_id
       WHERE t.round_id = ? ORDER BY s.strategy`,
    )
    .all(r.id) as SelectionRow[];
  for (const s of rows) selections.set(s.trajectory_id, [...(selections.get(s.trajectory_id) ?? []), s]);
  const byName = new Map(groups.map((g) => [g.name, g]));
  for (const t of trajectories) {
    const [name, detail] = classify(t, selections.get(t.id) ?? [], strategy);
    const g = byName.get(name)!;
    g.count++;
    if (g.items.length < limit) g.items.push({ id: t.id, seq: t.seq, promptId: t.prompt_id, preview: t.preview, steps: t.steps, detail });
  }
  return { round: r.idx, strategy, total: trajectories.length, groups };
}

function describe(s: SelectionRow): string {
  return s.status === 'pair' ? `${s.strategy}: step ${s.c} over step ${s.r}` : `${s.strategy} skip: ${s.reason}`;
}

function classify(t: TrajectoryRow, sel: SelectionRow[], strategy: string): [TrajectoryGroupName, string] {
  if (t.o_action !== null) return ['overridden', `${t.o_action} by ${t.o_curator ?? 'a curator'}`];
  const exported = sel.find((s) => s.strategy === strategy);
  if (!exported) return ['needs-review', sel.length ? `no ${strategy} selection yet; ${sel.map(describe).join('; ')}` : 'not selected yet'];
  const outcome = (s: SelectionRow): string => (s.status === 'pair' ? `pair ${s.c}>${s.r}` : 'skip');
  if (sel.some((s) => outcome(s) !== outcome(exported))) return ['needs-review', `strategies disagree: ${sel.map(describe).join('; ')}`];
  return [exported.status === 'pair' ? 'auto-selected' : 'skipped', describe(exported)];
}
