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
  /** Trajectories advanced together; fixed membership makes a resumed run equal an uninterrupted one. */
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
 * of the owner. Trajectories go in fixed chunks (by seq) and advance in lock step; each batch of
 * steps is committed in one transaction as soon as it is generated (per response for servers), so
 * a killed run loses at most the batch in flight and a rerun continues exactly where it stopped.
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
  const perResponse = backend.kind !== 'onnx';
  job.progress?.({ phase: 'generate', done: 0, total });
  for (const members of chunks.values()) {
    let active = members.filter((t) => t.steps.length < maxSteps);
    while (active.length > 0) {
      throwIfCancelled(job.signal, 'generation');
      const byKey = new Map(active.map((t) => [String(t.id), t]));
      const requests: GenerationRequest[] = active.map((t) => ({
        key: String(t.id),
        prompt: t.steps.length === 0 ? t.prompt : refinePrompt(template, t.prompt, t.steps[t.steps.length - 1] ?? ''),
        sampling: { ...settings.sampling, seed: stableSeed(settings.seedBase, owner.kind, owner.id, t.promptId, t.steps.length) },
      }));
      const toStep = (r: GenerationResult): NewStep => {
        const t = byKey.get(r.key);
        if (!t) throw new Error(`backend returned an unknown request key ${r.key}`);
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
      const apply = (steps: NewStep[]): void => {
        saveSteps(db, steps);
        for (const s of steps) {
          const t = byKey.get(String(s.trajectoryId));
          if (!t) continue;
          t.steps.push(s.text);
          if (s.completes === 'repeated') summary.stoppedRepeated++;
          if (s.completes) t.status = 'complete';
        }
        summary.stepsWritten += steps.length;
        job.progress?.({ phase: 'generate', done: summary.stepsWritten, total });
      };
      if (perResponse) {
        await backend.generate(requests, { signal: job.signal, onResult: (r) => apply([toStep(r)]) });
      } else {
        const results = await backend.generate(requests, { signal: job.signal });
        apply(results.map(toStep));
      }
      active = active.filter((t) => t.status === 'open' && t.steps.length < maxSteps);
    }
  }
  return summary;
}
