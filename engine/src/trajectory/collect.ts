import type { GenerationBackend, GenerationRequest, GenerationResult, SamplingParams } from '../generation/backend';
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
  const chunks = new Map<number, TrajectoryState[]>();
  for (const t of open) {
    const c = Math.floor(t.seq / settings.chunkSize);
    chunks.set(c, [...(chunks.get(c) ?? []), t]);
  }
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
  const apply = (pairs: [TrajectoryState, GenerationResult][]): void => {
    const steps = pairs.map(([t, r]) => toStep(t, r));
    saveSteps(db, steps);
    pairs.forEach(([t], i) => {
      const s = steps[i]!;
      t.steps.push(s.text);
      if (s.completes === 'repeated') summary.stoppedRepeated++;
      if (s.completes) t.status = 'complete';
    });
    summary.stepsWritten += steps.length;
    job.progress?.({ phase: 'generate', done: summary.stepsWritten, total });
  };
  const unfinished = (t: TrajectoryState) => t.status === 'open' && t.steps.length < maxSteps;
  if (backend.mergesCalls) {
    await chains(open.filter(unfinished), settings.chunkSize, backend, request, apply, unfinished, job);
  } else {
    for (const members of chunks.values()) await lockStep(members.filter(unfinished), backend, request, apply, unfinished, job);
  }
  return summary;
}

type Apply = (pairs: [TrajectoryState, GenerationResult][]) => void;

/**
 * Up to `width` trajectories at a time (in seq order), each on its own: its next step is asked
 * for as soon as its last one is written, the next trajectory starts as soon as one ends, and the
 * backend merges the requests into its running batch, so the batch stays full to the end and a
 * trajectory's steps run close together (its cached prefix is still there). A failure stops every
 * chain before its next request.
 */
async function chains(
  active: TrajectoryState[],
  width: number,
  backend: GenerationBackend,
  request: (t: TrajectoryState) => GenerationRequest,
  apply: Apply,
  unfinished: (t: TrajectoryState) => boolean,
  job: JobControl,
): Promise<void> {
  let failure: { err: unknown } | undefined;
  let next = 0;
  const worker = async (): Promise<void> => {
    try {
      while (!failure && next < active.length) {
        const t = active[next++]!;
        while (!failure && unfinished(t)) {
          throwIfCancelled(job.signal, 'generation');
          const [r] = await backend.generate([request(t)], { signal: job.signal });
          if (failure) return;
          apply([[t, r!]]);
        }
      }
    } catch (err) {
      failure ??= { err };
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, active.length) }, worker));
  if (failure) throw failure.err;
}

/** The chunk's trajectories advance together: one call per step index (servers answer each request as it comes). */
async function lockStep(
  active: TrajectoryState[],
  backend: GenerationBackend,
  request: (t: TrajectoryState) => GenerationRequest,
  apply: Apply,
  unfinished: (t: TrajectoryState) => boolean,
  job: JobControl,
): Promise<void> {
  while (active.length > 0) {
    throwIfCancelled(job.signal, 'generation');
    const byKey = new Map(active.map((t) => [String(t.id), t]));
    const find = (r: GenerationResult): TrajectoryState => {
      const t = byKey.get(r.key);
      if (!t) throw new Error(`backend returned an unknown request key ${r.key}`);
      return t;
    };
    await backend.generate(active.map(request), { signal: job.signal, onResult: (r) => apply([[find(r), r]]) });
    active = active.filter(unfinished);
  }
}
