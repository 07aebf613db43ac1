import type { Db } from '../store/db';
import type { Agreement } from '../protocol/engine-types';
export type { Agreement } from '../protocol/engine-types';

export function cohensKappa(pairs: [string, string][]): { observed: number; kappa: number | null } {
  const n = pairs.length;
  if (n === 0) return { observed: 0, kappa: null };
  const agree = pairs.filter(([a, b]) => a === b).length;
  const po = agree / n;
  const ca = new Map<string, number>();
  const cb = new Map<string, number>();
  for (const [a, b] of pairs) {
    ca.set(a, (ca.get(a) ?? 0) + 1);
    cb.set(b, (cb.get(b) ?? 0) + 1);
  }
  let pe = 0;
  for (const [label, count] of ca) pe += (count / n) * ((cb.get(label) ?? 0) / n);
  return { observed: po, kappa: pe === 1 ? (po === 1 ? 1 : null) : (po - pe) / (1 - pe) };
}

export function agreement(db: Db, roundId: number | null): Agreement {
  const roundFilter = roundId === null ? 't.round_id IS NOT NULL' : 't.round_id = @round';
  const label = (c: number | null, r: number | null): string => (c === null || r === null ? 'none' : `${c}>${r}`);
  // Each curator's live decision per trajectory, with step positions.
  const human = db
    .prepare(
      `SELECT o.trajectory_id AS trajectory, o.curator, sc.idx AS c, sr.idx AS r FROM overrides o
       JOIN trajectories t ON t.id = o.trajectory_id
       LEFT JOIN steps sc ON sc.id = o.chosen_step_id LEFT JOIN steps sr ON sr.id = o.rejected_step_id
       WHERE ${roundFilter} AND o.undone_at IS NULL
         AND o.id = (SELECT MAX(id) FROM overrides x WHERE x.trajectory_id = o.trajectory_id AND x.curator = o.curator AND x.undone_at IS NULL)`,
    )
    .all({ round: roundId }) as { trajectory: number; curator: string; c: number | null; r: number | null }[];
  const auto = db
    .prepare(
      `SELECT s.trajectory_id AS trajectory, s.strategy, sc.idx AS c, sr.idx AS r FROM selections s
       JOIN trajectories t ON t.id = s.trajectory_id
       LEFT JOIN steps sc ON sc.id = s.chosen_step_id LEFT JOIN steps sr ON sr.id = s.rejected_step_id
       WHERE ${roundFilter}`,
    )
    .all({ round: roundId }) as { trajectory: number; strategy: string; c: number | null; r: number | null }[];
  const byCurator = new Map<string, Map<number, string>>();
  for (const h of human) {
    const m = byCurator.get(h.curator) ?? new Map<number, string>();
    m.set(h.trajectory, label(h.c, h.r));
    byCurator.set(h.curator, m);
  }
  // For human-vs-strategy, the newest decision on a trajectory (whoever made it).
  const latestHuman = new Map<number, string>();
  for (const d of db
    .prepare(
      `SELECT o.trajectory_id AS trajectory, sc.idx AS c, sr.idx AS r FROM overrides o JOIN trajectories t ON t.id = o.trajectory_id
       LEFT JOIN steps sc ON sc.id = o.chosen_step_id LEFT JOIN steps sr ON sr.id = o.rejected_step_id
       WHERE ${roundFilter} AND o.id = (SELECT MAX(id) FROM overrides x WHERE x.trajectory_id = o.trajectory_id AND x.undone_at IS NULL)`,
    )
    .all({ round: roundId }) as { trajectory: number; c: number | null; r: number | null }[]) {
    latestHuman.set(d.trajectory, label(d.c, d.r));
  }
  const humanVsStrategy: Agreement['humanVsStrategy'] = {};
  for (const a of auto) {
    const h = latestHuman.get(a.trajectory);
    if (h === undefined) continue;
    const entry = (humanVsStrategy[a.strategy] ??= { compared: 0, agreed: 0, rate: null });
    entry.compared++;
    if (h === label(a.c, a.r)) entry.agreed++;
  }
  for (const e of Object.values(humanVsStrategy)) e.rate = e.compared ? e.agreed / e.compared : null;
  const curators: Agreement['curators'] = [];
  const names = [...byCurator.keys()].sort();
  for (let i = 0; i < names.length; i++) {
    for (let j = i + 1; j < names.length; j++) {
      const a = byCurator.get(names[i] as string) as Map<number, string>;
      const b = byCurator.get(names[j] as string) as Map<number, string>;
      const both: [string, string][] = [];
      for (const [t, la] of a) {
        const lb = b.get(t);
        if (lb !== undefined) both.push([la, lb]);
      }
      const k = cohensKappa(both);
      curators.push({ a: names[i] as string, b: names[j] as string, items: both.length, ...k });
    }
  }
  const idx = roundId === null ? null : ((db.prepare('SELECT idx FROM rounds WHERE id = ?').get(roundId) as { idx: number } | undefined)?.idx ?? null);
  return { round: idx, humanVsStrategy, curators };
}
