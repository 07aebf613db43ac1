import type { PromptInput } from '../generation/backend';
import type { StrategyName } from '../project/config';
import { type Db, parseJson } from '../store/db';

/** A preference pair as it goes into training: the human override if there is one, else the strategy's pick. */
export interface Pair {
  trajectoryId: number;
  promptId: string;
  prompt: PromptInput;
  chosen: { stepId: number; idx: number; text: string };
  rejected: { stepId: number; idx: number; text: string };
  /** 'override' when a curator decided, else 'auto'. */
  source: 'override' | 'auto';
  /** The automatic strategy, or 'human' for overrides. */
  strategy: string;
  curator: string | null;
}

export interface PairSummary {
  pairs: Pair[];
  /** Trajectories without a pair: the strategy skipped them or a curator marked tie / discard. */
  skipped: number;
  overridden: number;
}

interface Row {
  trajectory_id: number;
  prompt_id: string;
  prompt_json: string;
  o_action: string | null;
  o_curator: string | null;
  o_chosen: number | null;
  o_rejected: number | null;
  s_status: string | null;
  s_chosen: number | null;
  s_rejected: number | null;
}

export function roundPairs(db: Db, roundId: number, strategy: StrategyName): PairSummary {
  const rows = db
    .prepare(
      `SELECT t.id AS trajectory_id, t.prompt_id, p.prompt_json,
              o.action AS o_action, o.curator AS o_curator, o.chosen_step_id AS o_chosen, o.rejected_step_id AS o_rejected,
              s.status AS s_status, s.chosen_step_id AS s_chosen, s.rejected_step_id AS s_rejected
       FROM trajectories t JOIN prompts p ON p.id = t.prompt_id
       LEFT JOIN overrides o ON o.id = (SELECT id FROM overrides WHERE trajectory_id = t.id AND undone_at IS NULL ORDER BY id DESC LIMIT 1)
       LEFT JOIN selections s ON s.trajectory_id = t.id AND s.strategy = ?
       WHERE t.round_id = ? AND t.status = 'complete' ORDER BY t.seq`,
    )
    .all(strategy, roundId) as Row[];
  const step = db.prepare('SELECT id, idx, text FROM steps WHERE id = ?');
  const load = (id: number) => step.get(id) as { id: number; idx: number; text: string };
  const out: PairSummary = { pairs: [], skipped: 0, overridden: 0 };
  for (const r of rows) {
    let ids: [number, number] | null = null;
    let source: Pair['source'] = 'auto';
    if (r.o_action !== null) {
      source = 'override';
      out.overridden++;
      if (r.o_chosen !== null && r.o_rejected !== null) ids = [r.o_chosen, r.o_rejected];
    } else if (r.s_status === 'pair' && r.s_chosen !== null && r.s_rejected !== null) {
      ids = [r.s_chosen, r.s_rejected];
    }
    if (!ids) {
      out.skipped++;
      continue;
    }
    const c = load(ids[0]);
    const j = load(ids[1]);
    out.pairs.push({
      trajectoryId: r.trajectory_id,
      promptId: r.prompt_id,
      prompt: parseJson<PromptInput>(r.prompt_json, `prompt ${r.prompt_id}`) ?? '',
      chosen: { stepId: c.id, idx: c.idx, text: c.text },
      rejected: { stepId: j.id, idx: j.idx, text: j.text },
      source,
      strategy: source === 'override' ? 'human' : strategy,
      curator: r.o_curator,
    });
  }
  return out;
}
