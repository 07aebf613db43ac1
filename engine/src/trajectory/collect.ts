import type { GenerationBackend, GenerationRequest, GenerationResult, SamplingParams } from '../generation/backend';
import { runBounded } from '../generation/openai/concurrency';
import { type JobControl, throwIfCancelled } from '../progress';
import { refinePrompt, type RefinementTemplate } from '../refinement/template';
import type { Db } from '../store/db';
import { normalizeAnswer, stableSeed } from './normalize';
import { loadTrajectories, type NewStep, type Owner, saveSteps, type TrajectoryState } from './store';

export interface CollectSettings {
  /** K: refinements after the first answer; a trajectory has up to K + 1 steps. */
  refinements: number;
  sampling: Omit<SamplingParams, 'seed'>;
  /** Mixed with the owner, prompt id and step index into each request's seed. */
  seedBase: number;
  stopWhenRepeated: boolean;
  /** Trajectories in flight at once (onnx), or advanced together in lock step (servers). */
  chunkSize: number;
  modelId: number;
}

export interface CollectSummary {
  trajectories: number;
  stepsWritten: number;
  stoppedRepeated: number;
}

/**
 * y0 = answer(x); y(k+1) = answer(refine(x, y(k))) up to K refinements, for every open trajectory
 * of the owner. When the backend merges calls (onnx), up to chunkSize trajectories run at once,
 * each asking for its next step as soon as it has the last one; otherwise (servers) trajectories go
 * in fixed chunks (by seq) that advance in lock step. Each step is committed as soon as it is
 * generated, so a killed run loses at most the steps in flight and a rerun continues where it
 * stopped; a request's seed is fixed by its prompt and step, so the texts do not depend on which
 * requests shared a batch.
 */
export async function collectTrajectories(
  db: Db,
  owner: Owner,
  backend: GenerationBackend,
  template: RefinementTemplate,
  settings: CollectSettings,
  job: JobControl = {},
): Promise<CollectSummary> {
  const open = loadTrajectories(db, owner, true);
  const all = open.length;
  const maxSteps = settings.refinements + 1;
  const summary: CollectSummary = { trajectories: all, stepsWritten: 0, stoppedRepeated: 0 };
  const total = open.reduce((n, t) => n + (maxSteps - t.steps.length), 0);
  job.progress?.({ phase: 'generate', done: 0, total });
  const request = (t: TrajectoryState): GenerationRequest => ({
    key: String(t.id),
    prompt: t.steps.length === 0 ? t.prompt : refinePrompt(template, t.prompt, t.steps[t.steps.length - 1] ?? ''),
    sampling: { ...settings.sampling, seed: stableSeed(settings.seedBase, owner.kind, owner.id, t.promptId, t.steps.length) },
  });
  const toStep = (t: TrajectoryState, r: GenerationResult): NewStep => {
    const idx = t.steps.length;
    const previous = t.steps[idx - 1];
    const repeated = settings.stopWhenRepeated && previous !== undefined && normalizeAnswer(previous) === normalizeAnswer(r.text);
    const completes = idx + 1 >= maxSteps ? 'max_steps' : repeated ? 'repeated' : null;
    return {
      trajectoryId: t.id, idx, text: r.text, promptTokens: r.promptTokens, completionTokens: r.completionTokens,
      finishReason: r.finishReason, modelId: settings.modelId, sampling: settings.sampling,
      seed: stableSeed(settings.seedBase, owner.kind, owner.id, t.promptId, idx), durationMs: r.durationMs, completes,
    };
  };
  const apply = (t: TrajectoryState, r: GenerationResult): void => {
    const step = toStep(t, r);
    saveSteps(db, [step]);
    t.steps.push(step.text);
    if (step.completes === 'repeated') summary.stoppedRepeated++;
    if (step.completes) t.status = 'complete';
    summary.stepsWritten++;
    job.progress?.({ phase: 'generate', done: summary.stepsWritten, total });
  };
  const unfinished = (t: TrajectoryState) => t.status === 'open' && t.steps.length < maxSteps;
  const run: Run = { backend, request, apply, unfinished, signal: job.signal };
  if (backend.mergesCalls) {
    await chains(open.filter(unfinished), settings.chunkSize, run);
  } else {
    const chunks = new Map<number, TrajectoryState[]>();
    for (const t of open) {
      const c = Math.floor(t.seq / settings.chunkSize);
      chunks.set(c, [...(chunks.get(c) ?? []), t]);
    }
    for (const members of chunks.values()) await lockStep(members.filter(unfinished), run);
  }
  return summary;
}

/** What both ways of collecting need: the backend, how to ask for a trajectory's next step, how to keep it. */
interface Run {
  backend: GenerationBackend;
  request: (t: TrajectoryState) => GenerationRequest;
  apply: (t: TrajectoryState, r: GenerationResult) => void;
  unfinished: (t: TrajectoryState) => boolean;
  signal: AbortSignal | undefined;
}

/**
 * Up to `width` trajectories at a time (in seq order), each on its own: its next step is asked
 * for as soon as its last one is written, the next trajectory starts as soon as one ends, and the
 * backend merges the requests into its running batch, so the batch stays full to the end and a
 * trajectory's steps run close together (its cached prefix is still there). The first failure
 * cancels the requests in flight and starts no more (runBounded).
 */
async function chains(active: TrajectoryState[], width: number, run: Run): Promise<void> {
  await runBounded(
    active.length,
    width,
    async (index, signal) => {
      const t = active[index]!;
      while (run.unfinished(t)) {
        const [r] = await run.backend.generate([run.request(t)], { signal });
        if (signal.aborted) return;
        run.apply(t, r!);
      }
    },
    run.signal,
    'generation',
  );
}

/** The chunk's trajectories advance together: one call per step index (servers answer each request as it comes). */
async function lockStep(active: TrajectoryState[], run: Run): Promise<void> {
  while (active.length > 0) {
    throwIfCancelled(run.signal, 'generation');
    const byKey = new Map(active.map((t) => [String(t.id), t]));
    const find = (r: GenerationResult): TrajectoryState => {
      const t = byKey.get(r.key);
      if (!t) throw new Error(`backend returned an unknown request key ${r.key}`);
      return t;
    };
    await run.backend.generate(active.map(run.request), { signal: run.signal, onResult: (r) => run.apply(find(r), r) });
    active = active.filter(run.unfinished);
  }
}
