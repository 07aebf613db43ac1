import type { FinishReason, PromptInput, SamplingParams } from '../generation/backend';
import type { Statement } from 'better-sqlite3';
import { type Db, now, parseJson } from '../store/db';

/** Trajectories belong to a round (collection) or to an evaluation (held-out accuracy). */
export type Owner = { kind: 'round'; id: number } | { kind: 'evaluation'; id: number };

export interface TrajectoryState {
  id: number;
  seq: number;
  promptId: string;
  prompt: PromptInput;
  reference: string | null;
  status: 'open' | 'complete';
  /** Texts of the model's steps y0..yn, in order. */
  steps: string[];
}

export interface NewStep {
  trajectoryId: number;
  idx: number;
  text: string;
  promptTokens: number;
  completionTokens: number;
  finishReason: FinishReason;
  modelId: number;
  sampling: Omit<SamplingParams, 'seed'>;
  seed: number;
  durationMs: number;
  /** Set when this step ends the trajectory. */
  completes: 'max_steps' | 'repeated' | null;
}

const ownerColumn = (o: Owner): string => (o.kind === 'round' ? 'round_id' : 'evaluation_id');

export function countTrajectories(db: Db, owner: Owner): number {
  return (db.prepare(`SELECT COUNT(*) AS n FROM trajectories WHERE ${ownerColumn(owner)} = ?`).get(owner.id) as { n: number }).n;
}

/** Creates one open trajectory per prompt, in the given order, at positions from `firstSeq` on (a widened round appends), in one transaction. */
export function createTrajectories(db: Db, owner: Owner, promptIds: string[], modelId: number, firstSeq = 0): void {
  const insert = db.prepare(
    `INSERT INTO trajectories (${ownerColumn(owner)}, prompt_id, model_id, status, seq, created_at) VALUES (?, ?, ?, 'open', ?, ?)`,
  );
  const t = now();
  db.transaction(() => promptIds.forEach((id, i) => insert.run(owner.id, id, modelId, firstSeq + i, t)))();
}

interface TrajectoryJoinRow {
  id: number;
  seq: number;
  prompt_id: string;
  prompt_json: string;
  reference: string | null;
  status: 'open' | 'complete';
}

export function loadTrajectories(db: Db, owner: Owner, onlyOpen: boolean): TrajectoryState[] {
  const rows = db
    .prepare(
      `SELECT t.id, t.seq, t.prompt_id, p.prompt_json, p.reference, t.status FROM trajectories t JOIN prompts p ON p.id = t.prompt_id
       WHERE t.${ownerColumn(owner)} = ? ${onlyOpen ? "AND t.status = 'open'" : ''} ORDER BY t.seq`,
    )
    .all(owner.id) as TrajectoryJoinRow[];
  const stepsOf = db.prepare("SELECT text FROM steps WHERE trajectory_id = ? AND origin = 'model' ORDER BY idx");
  return rows.map((r) => ({
    id: r.id,
    seq: r.seq,
    promptId: r.prompt_id,
    prompt: parseJson<PromptInput>(r.prompt_json, `prompt ${r.prompt_id}`) ?? '',
    reference: r.reference,
    status: r.status,
    steps: (stepsOf.all(r.id) as { text: string }[]).map((s) => s.text),
  }));
}

/**
 * Rows per INSERT statement. SQLite wraps each statement in a savepoint, and FTS5 (the steps_fts
 * trigger of migration 2) writes its pending index out at every savepoint: one statement per row
 * made each row its own index segment to merge. Multi-row statements ingest about 1.7x faster
 * (engine/bench, store section).
 */
const ROWS_PER_INSERT = 128;
const insertStatements = new WeakMap<Db, Map<number, Statement>>();

function insertRows(db: Db, rows: number): Statement {
  let byRows = insertStatements.get(db);
  if (!byRows) insertStatements.set(db, (byRows = new Map()));
  let statement = byRows.get(rows);
  if (!statement) {
    statement = db.prepare(
      `INSERT INTO steps (trajectory_id, idx, origin, text, prompt_tokens, completion_tokens, finish_reason, model_id, sampling_json, seed, duration_ms, created_at)
       VALUES ${Array.from({ length: rows }, () => "(?, ?, 'model', ?, ?, ?, ?, ?, ?, ?, ?, ?)").join(', ')}`,
    );
    byRows.set(rows, statement);
  }
  return statement;
}

/** Writes steps (and closes the trajectories they complete) in one transaction: all or nothing. */
export function saveSteps(db: Db, steps: NewStep[]): void {
  const close = db.prepare("UPDATE trajectories SET status = 'complete', stop_reason = ? WHERE id = ?");
  const t = now();
  db.transaction(() => {
    for (let start = 0; start < steps.length; start += ROWS_PER_INSERT) {
      const chunk = steps.slice(start, start + ROWS_PER_INSERT);
      const values: unknown[] = [];
      for (const s of chunk) values.push(s.trajectoryId, s.idx, s.text, s.promptTokens, s.completionTokens, s.finishReason, s.modelId, JSON.stringify(s.sampling), s.seed, s.durationMs, t);
      insertRows(db, chunk.length).run(values);
    }
    for (const s of steps) if (s.completes) close.run(s.completes, s.trajectoryId);
  })();
}
