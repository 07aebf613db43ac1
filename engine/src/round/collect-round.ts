import type { GenerationBackend } from '../generation/backend';
import type { JobControl } from '../progress';
import type { Project } from '../project/project';
import { collectTrajectories, type CollectSummary } from '../trajectory/collect';
import { stableSeed } from '../trajectory/normalize';
import { countTrajectories, createTrajectories } from '../trajectory/store';
import { getRound, setRoundStatus } from './rounds';

/**
 * The round's prompts: all train prompts, or a seeded sample of `want` of them (promptsPerRound), in
 * import order. The sample of a larger `want` holds the smaller one's: a widened round keeps its
 * prompts and adds the next ones of the same seeded order.
 */
export function roundPromptIds(p: Project, roundIdx: number, want = p.config.generation.promptsPerRound): string[] {
  const all = (p.db.prepare("SELECT id FROM prompts WHERE split = 'train' ORDER BY seq").all() as { id: string }[]).map((r) => r.id);
  if (want <= 0 || want >= all.length) return all;
  const rng = mulberry32(stableSeed(p.config.generation.seed, 'round-prompts', roundIdx));
  const picked = all.map((_, i) => i);
  for (let i = picked.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [picked[i], picked[j]] = [picked[j] as number, picked[i] as number];
  }
  return picked
    .slice(0, want)
    .sort((a, b) => a - b)
    .map((i) => all[i] as string);
}

/**
 * When the round's automatic pairs (selection.strategy) are fewer than generation.minPairs, adds the
 * next promptsPerRound prompts of its seeded order as open trajectories and reopens the round for
 * collection, in one transaction (a kill -9 leaves the round as it was, or widened and collecting).
 * Returns the prompts added: 0 when the round has enough pairs, minPairs is off, or the round holds
 * every train prompt.
 */
export function widenRound(p: Project, roundId: number): { pairs: number; added: number } {
  const { minPairs, promptsPerRound } = p.config.generation;
  const round = getRound(p.db, roundId);
  const pairs = (
    p.db
      .prepare("SELECT COUNT(*) AS n FROM selections s JOIN trajectories t ON t.id = s.trajectory_id WHERE t.round_id = ? AND s.strategy = ? AND s.status = 'pair'")
      .get(roundId, p.config.selection.strategy) as { n: number }
  ).n;
  if (minPairs <= 0 || promptsPerRound <= 0 || pairs >= minPairs) return { pairs, added: 0 };
  const held = new Set(p.db.prepare('SELECT prompt_id FROM trajectories WHERE round_id = ?').pluck().all(roundId) as string[]);
  const next = roundPromptIds(p, round.idx, held.size + promptsPerRound).filter((id) => !held.has(id));
  if (next.length === 0) return { pairs, added: 0 };
  const lastSeq = p.db.prepare('SELECT MAX(seq) FROM trajectories WHERE round_id = ?').pluck().get(roundId) as number | null;
  p.db.transaction(() => {
    createTrajectories(p.db, { kind: 'round', id: roundId }, next, round.policy_model_id, (lastSeq ?? -1) + 1);
    setRoundStatus(p.db, roundId, 'collecting');
  })();
  return { pairs, added: next.length };
}

/** Collects (or resumes collecting) the round's trajectories with its policy. */
export async function collectRound(p: Project, roundId: number, backend: GenerationBackend, job: JobControl = {}): Promise<CollectSummary> {
  const round = getRound(p.db, roundId);
  const owner = { kind: 'round' as const, id: roundId };
  if (countTrajectories(p.db, owner) === 0) {
    const ids = roundPromptIds(p, round.idx);
    if (ids.length === 0) throw new Error('there are no train prompts; import some with `aries import FILE`');
    createTrajectories(p.db, owner, ids, round.policy_model_id);
  }
  const g = p.config.generation;
  const summary = await collectTrajectories(
    p.db,
    owner,
    backend,
    p.template,
    {
      refinements: g.refinements,
      sampling: { temperature: g.temperature, topP: g.topP, topK: g.topK, maxNewTokens: g.maxNewTokens, stop: g.stop },
      seedBase: g.seed,
      stopWhenRepeated: g.stopWhenRepeated,
      chunkSize: g.batchSize,
      modelId: round.policy_model_id,
    },
    job,
  );
  if (round.status === 'collecting') setRoundStatus(p.db, roundId, 'collected');
  return summary;
}

/** A small seeded PRNG (mulberry32): deterministic prompt sampling across machines. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
