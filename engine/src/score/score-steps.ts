import type { PromptInput } from '../generation/backend';
import { type JobControl, throwIfCancelled } from '../progress';
import { type Db, now, parseJson } from '../store/db';
import type { Owner } from '../trajectory/store';
import type { Scorer } from './scorer';

const BATCH = 256;

/**
 * Scores every step of a round or evaluation (model and curator steps) that this scorer has not
 * scored yet, in batches; each batch is committed as it finishes, so a rerun skips done work.
 */
export async function scoreSteps(db: Db, owner: Owner, scorer: Scorer, job: JobControl = {}): Promise<{ scored: number }> {
  const column = owner.kind === 'round' ? 'round_id' : 'evaluation_id';
  const pending = db
    .prepare(
      `SELECT s.id AS step_id, s.text, p.prompt_json, p.reference FROM steps s
       JOIN trajectories t ON t.id = s.trajectory_id JOIN prompts p ON p.id = t.prompt_id
       WHERE t.${column} = ? AND NOT EXISTS (SELECT 1 FROM scores c WHERE c.step_id = s.id AND c.scorer = ?)
       ORDER BY s.id`,
    )
    .all(owner.id, scorer.name) as { step_id: number; text: string; prompt_json: string; reference: string | null }[];
  const insert = db.prepare('INSERT INTO scores (step_id, scorer, value, raw_json, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(step_id, scorer) DO NOTHING');
  let scored = 0;
  job.progress?.({ phase: 'score', done: 0, total: pending.length, message: scorer.name });
  for (let i = 0; i < pending.length; i += BATCH) {
    throwIfCancelled(job.signal, 'scoring');
    const batch = pending.slice(i, i + BATCH);
    const results = await scorer.score(
      batch.map((r) => ({ stepId: r.step_id, prompt: parseJson<PromptInput>(r.prompt_json, 'prompt') ?? '', response: r.text, reference: r.reference })),
      { signal: job.signal },
    );
    const t = now();
    db.transaction(() => {
      for (const r of results) insert.run(r.stepId, scorer.name, r.value, JSON.stringify(r.raw), t);
    })();
    scored += results.length;
    job.progress?.({ phase: 'score', done: scored, total: pending.length, message: scorer.name });
  }
  return { scored };
}
