import type { PromptInput } from '../generation/backend';
import { type JobControl, throwIfCancelled } from '../progress';
import { type Db, now, parseJson } from '../store/db';
import type { Owner } from '../trajectory/store';
import type { Scorer } from './scorer';

const BATCH = 256;

interface PendingStep {
  step_id: number;
  text: string;
  prompt_json: string;
  reference: string | null;
}

/** Steps with what a scorer reads (prompt, reference), that `scorer` has not scored yet; `where` narrows them. */
function pendingSteps(db: Db, scorer: Scorer, where: string, param: number): PendingStep[] {
  return db
    .prepare(
      `SELECT s.id AS step_id, s.text, p.prompt_json, p.reference FROM steps s
       JOIN trajectories t ON t.id = s.trajectory_id JOIN prompts p ON p.id = t.prompt_id
       WHERE ${where} = ? AND NOT EXISTS (SELECT 1 FROM scores c WHERE c.step_id = s.id AND c.scorer = ?)
       ORDER BY s.id`,
    )
    .all(param, scorer.name) as PendingStep[];
}

/** Scores `rows` and stores the scores in one transaction. */
async function scoreAndStore(db: Db, scorer: Scorer, rows: PendingStep[], signal?: AbortSignal): Promise<number> {
  const results = await scorer.score(
    rows.map((r) => ({ stepId: r.step_id, prompt: parseJson<PromptInput>(r.prompt_json, 'prompt') ?? '', response: r.text, reference: r.reference })),
    { signal },
  );
  const insert = db.prepare('INSERT INTO scores (step_id, scorer, value, raw_json, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(step_id, scorer) DO NOTHING');
  const t = now();
  db.transaction(() => {
    for (const r of results) insert.run(r.stepId, scorer.name, r.value, JSON.stringify(r.raw), t);
  })();
  return results.length;
}

/**
 * Scores every step of a round or evaluation (model and curator steps) that this scorer has not
 * scored yet, in batches; each batch is committed as it finishes, so a rerun skips done work.
 */
export async function scoreSteps(db: Db, owner: Owner, scorer: Scorer, job: JobControl = {}): Promise<{ scored: number }> {
  const pending = pendingSteps(db, scorer, owner.kind === 'round' ? 't.round_id' : 't.evaluation_id', owner.id);
  let scored = 0;
  job.progress?.({ phase: 'score', done: 0, total: pending.length, message: scorer.name });
  for (let i = 0; i < pending.length; i += BATCH) {
    throwIfCancelled(job.signal, 'scoring');
    scored += await scoreAndStore(db, scorer, pending.slice(i, i + BATCH), job.signal);
    job.progress?.({ phase: 'score', done: scored, total: pending.length, message: scorer.name });
  }
  return { scored };
}

/** Scores one step (an answer a curator just wrote) with each of `scorers` that has not scored it. */
export async function scoreStep(db: Db, stepId: number, scorers: Scorer[]): Promise<void> {
  for (const scorer of scorers) await scoreAndStore(db, scorer, pendingSteps(db, scorer, 's.id', stepId));
}
