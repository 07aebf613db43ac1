import { EngineError } from '../errors';
import type { PromptInput } from '../generation/backend';
import { refinePrompt, type RefinementTemplate } from '../refinement/template';
import { type Db, parseJson } from '../store/db';
import type { ReviewFilter, ListQuery, TrajectoryPage, StepDetail, TrajectoryDetail } from '../protocol/engine-types';
export type { ReviewFilter, ListQuery, TrajectoryListItem, TrajectoryPage, StepDetail, SelectionDetail, OverrideDetail, TrajectoryDetail } from '../protocol/engine-types';

export const REVIEW_FILTERS: readonly ReviewFilter[] = ['all', 'needs-review', 'auto-selected', 'skipped', 'overridden', 'disagreement', 'low-margin'];

const FILTER_SQL: Record<ReviewFilter, string> = {
  all: '1',
  'needs-review': 't.override_action IS NULL AND (t.disagreement = 1 OR t.auto_status IS NULL)',
  'auto-selected': "t.override_action IS NULL AND t.disagreement = 0 AND t.auto_status = 'pair'",
  skipped: "t.override_action IS NULL AND t.disagreement = 0 AND t.auto_status = 'skip'",
  overridden: 't.override_action IS NOT NULL',
  disagreement: 't.disagreement = 1',
  'low-margin': "t.auto_status = 'pair' AND t.margin IS NOT NULL AND t.margin < @lowMargin",
};

/** The same filters over review_counts' buckets (low-margin needs the rows: counted from the index). */
const BUCKET_SQL: Record<Exclude<ReviewFilter, 'low-margin'>, string> = {
  all: '1',
  'needs-review': "overridden = 0 AND (disagreement = 1 OR auto_status = '')",
  'auto-selected': "overridden = 0 AND disagreement = 0 AND auto_status = 'pair'",
  skipped: "overridden = 0 AND disagreement = 0 AND auto_status = 'skip'",
  overridden: 'overridden = 1',
  disagreement: 'disagreement = 1',
};

/** A search lists at most this many trajectories (the first matches in round order); `capped` says so. */
export const SEARCH_CAP = 2000;

/** Quotes each word for FTS5 so user text is never parsed as query syntax. */
export function ftsQuery(search: string): string | null {
  const words = search.match(/[\p{L}\p{N}_]+/gu);
  return words && words.length ? words.map((w) => `"${w}"`).join(' ') : null;
}

export function resolveRound(db: Db, round: number | null): { id: number; idx: number } | null {
  const row = (round === null ? db.prepare('SELECT id, idx FROM rounds ORDER BY idx DESC LIMIT 1').get() : db.prepare('SELECT id, idx FROM rounds WHERE idx = ?').get(round)) as
    | { id: number; idx: number }
    | undefined;
  if (!row && round !== null) throw new EngineError('NOT_FOUND', `round ${round} does not exist`);
  return row ?? null;
}

export function listTrajectories(db: Db, q: ListQuery): TrajectoryPage {
  const round = resolveRound(db, q.round);
  if (!round) return { round: null, total: 0, reviewed: 0, all: 0, items: [] };
  const match = q.search ? ftsQuery(q.search) : null;
  const keyset = q.afterSeq !== undefined && !match;
  const params = { round: round.id, lowMargin: q.lowMargin ?? 0.5, match, cap: SEARCH_CAP + 1, limit: Math.min(Math.max(q.limit, 1), 500), offset: keyset ? 0 : Math.max(q.offset, 0), afterSeq: q.afterSeq ?? -1 };
  // A search starts from the round's matching trajectories (full-text indexes on answers and
  // prompts, first matches first, capped; CROSS JOIN keeps SQLite from driving from the big
  // index instead) and counts them in the same pass; a plain list walks the covering index in seq
  // order and reads its counts from review_counts.
  const from = match
    ? `(SELECT id FROM (SELECT s.trajectory_id AS id FROM steps_fts f JOIN steps s ON s.id = f.rowid JOIN trajectories h ON h.id = s.trajectory_id AND h.round_id = @round
                        WHERE steps_fts MATCH @match LIMIT @cap)
        UNION SELECT id FROM (SELECT h.id FROM prompts_fts pf JOIN prompts p2 ON p2.rowid = pf.rowid JOIN trajectories h ON h.prompt_id = p2.id AND h.round_id = @round
                        WHERE prompts_fts MATCH @match LIMIT @cap)) hits CROSS JOIN trajectories t ON t.id = hits.id`
    : 'trajectories t';
  const where = `t.round_id = @round AND t.status = 'complete' AND ${FILTER_SQL[q.filter]}`;
  const bucket = (sql: string): number =>
    (db.prepare(`SELECT IFNULL(SUM(n), 0) AS n FROM review_counts WHERE round_id = ? AND status = 'complete' AND ${sql}`).get(round.id) as { n: number }).n;
  const countRows = (): number => (db.prepare(`SELECT COUNT(*) AS n FROM ${from} WHERE ${where}`).get(params) as { n: number }).n;
  const rows = db
    .prepare(
      `SELECT t.id, t.seq, t.prompt_id, substr(p.search_text, 1, 160) AS preview, t.auto_status, t.margin, t.disagreement, t.override_action, page.total,
              (SELECT COUNT(*) FROM steps s WHERE s.trajectory_id = t.id AND s.origin = 'model') AS steps
       FROM (SELECT t.id, ${match ? 'COUNT(*) OVER ()' : 'NULL'} AS total FROM ${from} WHERE ${where} ${keyset ? 'AND t.seq > @afterSeq' : ''} ORDER BY t.seq LIMIT @limit OFFSET @offset) page
       JOIN trajectories t ON t.id = page.id JOIN prompts p ON p.id = t.prompt_id ORDER BY t.seq`,
    )
    .all(params) as { id: number; seq: number; prompt_id: string; preview: string; auto_status: 'pair' | 'skip' | null; margin: number | null; disagreement: number; override_action: string | null; steps: number; total: number | null }[];
  let total = match ? (rows[0]?.total ?? countRows()) : q.filter === 'low-margin' ? countRows() : bucket(BUCKET_SQL[q.filter]);
  const capped = match !== null && total > SEARCH_CAP;
  if (capped) {
    total = SEARCH_CAP;
    rows.splice(Math.max(0, SEARCH_CAP - params.offset));
  }
  return {
    round: round.idx,
    total,
    ...(capped ? { capped } : {}),
    reviewed: bucket('overridden = 1'),
    all: bucket('1'),
    items: rows.map((r) => ({
      id: r.id, seq: r.seq, promptId: r.prompt_id, preview: r.preview, steps: r.steps,
      autoStatus: r.auto_status, margin: r.margin, disagreement: r.disagreement === 1, override: r.override_action,
    })),
  };
}

export function getTrajectory(db: Db, id: number, template: RefinementTemplate, strategy: string): TrajectoryDetail {
  const t = db
    .prepare('SELECT t.id, t.prompt_id, t.stop_reason, r.idx AS round, p.prompt_json, p.reference FROM trajectories t JOIN rounds r ON r.id = t.round_id JOIN prompts p ON p.id = t.prompt_id WHERE t.id = ?')
    .get(id) as { id: number; prompt_id: string; stop_reason: string | null; round: number; prompt_json: string; reference: string | null } | undefined;
  if (!t) throw new EngineError('NOT_FOUND', `trajectory ${id} does not exist (or belongs to an evaluation)`);
  const prompt = parseJson<PromptInput>(t.prompt_json, `prompt ${t.prompt_id}`) ?? '';
  const stepRows = db
    .prepare('SELECT id, idx, origin, edited_from_step_id, curator, text, completion_tokens, created_at FROM steps WHERE trajectory_id = ? ORDER BY idx, id')
    .all(id) as { id: number; idx: number; origin: 'model' | 'curator'; edited_from_step_id: number | null; curator: string | null; text: string; completion_tokens: number | null; created_at: string }[];
  const scoreRows = db
    .prepare('SELECT c.step_id, c.scorer, c.value, c.raw_json FROM scores c JOIN steps s ON s.id = c.step_id WHERE s.trajectory_id = ?')
    .all(id) as { step_id: number; scorer: string; value: number | null; raw_json: string | null }[];
  const modelText = new Map(stepRows.filter((s) => s.origin === 'model').map((s) => [s.idx, s.text]));
  const show = (p: PromptInput): string => (typeof p === 'string' ? p : p.map((m) => `${m.role}: ${m.content}`).join('\n'));
  const steps: StepDetail[] = stepRows.map((s) => ({
    id: s.id, idx: s.idx, origin: s.origin, editedFromStepId: s.edited_from_step_id, curator: s.curator, text: s.text,
    completionTokens: s.completion_tokens, createdAt: s.created_at,
    prompt: show(s.idx === 0 ? prompt : refinePrompt(template, prompt, modelText.get(s.idx - 1) ?? '')),
    scores: Object.fromEntries(scoreRows.filter((c) => c.step_id === s.id).map((c) => [c.scorer, { value: c.value, raw: parseJson<unknown>(c.raw_json, 'score') }])),
  }));
  const selections = (db.prepare('SELECT strategy, status, chosen_step_id, rejected_step_id, reason, margin FROM selections WHERE trajectory_id = ? ORDER BY strategy').all(id) as {
    strategy: string; status: 'pair' | 'skip'; chosen_step_id: number | null; rejected_step_id: number | null; reason: string; margin: number | null;
  }[]).map((s) => ({ strategy: s.strategy, status: s.status, chosenStepId: s.chosen_step_id, rejectedStepId: s.rejected_step_id, reason: s.reason, margin: s.margin }));
  const overrides = (db.prepare('SELECT * FROM overrides WHERE trajectory_id = ? ORDER BY id DESC').all(id) as {
    id: number; curator: string; action: string; chosen_step_id: number | null; rejected_step_id: number | null; note: string | null; created_at: string; undone_at: string | null;
  }[]).map((o) => ({ id: o.id, curator: o.curator, action: o.action, chosenStepId: o.chosen_step_id, rejectedStepId: o.rejected_step_id, note: o.note, createdAt: o.created_at, undoneAt: o.undone_at }));
  const live = overrides.find((o) => o.undoneAt === null);
  const auto = selections.find((s) => s.strategy === strategy);
  let effective: TrajectoryDetail['effective'] = null;
  if (live) {
    if (live.chosenStepId !== null && live.rejectedStepId !== null) effective = { chosenStepId: live.chosenStepId, rejectedStepId: live.rejectedStepId, source: 'override' };
  } else if (auto?.status === 'pair' && auto.chosenStepId !== null && auto.rejectedStepId !== null) {
    effective = { chosenStepId: auto.chosenStepId, rejectedStepId: auto.rejectedStepId, source: 'auto' };
  }
  return { id: t.id, round: t.round, promptId: t.prompt_id, prompt, reference: t.reference, stopReason: t.stop_reason, steps, selections, overrides, effective };
}
