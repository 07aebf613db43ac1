import type { Connection } from 'vscode-languageserver/node';
import { EngineError } from '../errors';
import { GREEDY, type PromptInput } from '../generation/backend';
import { openBackend } from '../generation/create';
import { currentModel } from '../model/registry';
import type { JobControl } from '../progress';
import { throwIfCancelled } from '../progress';
import type { Project } from '../project/project';
import { TryPromptDeltaNotification, type TryPromptParams } from '../protocol/engine';
import { refinePrompt } from '../refinement/template';

/** "Try a Prompt": the current model answers, then refines its answer K times; text streams as it comes. */
export async function tryPrompt(p: Project, connection: Connection, params: TryPromptParams, job: JobControl): Promise<{ steps: string[]; model: string }> {
  const model = currentModel(p.db);
  if (!model) throw new EngineError('NOT_FOUND', 'the project has no current model');
  if (!Number.isInteger(params.refinements) || params.refinements < 0 || params.refinements > 16) throw new EngineError('BAD_INPUT', `refinements must be 0..16, got ${params.refinements}`);
  const backend = await openBackend(p, model, 1);
  const steps: string[] = [];
  try {
    for (let k = 0; k <= params.refinements; k++) {
      throwIfCancelled(job.signal, 'Try a Prompt');
      const prompt: PromptInput = k === 0 ? params.prompt : refinePrompt(p.template, params.prompt, steps[k - 1] ?? '');
      const shown = typeof prompt === 'string' ? prompt : (prompt.at(-1)?.content ?? '');
      void connection.sendNotification(TryPromptDeltaNotification.type, { jobId: params.jobId, step: k, delta: '', prompt: shown });
      const [result] = await backend.generate(
        [{ key: String(k), prompt, sampling: { ...GREEDY, temperature: params.temperature ?? 0, maxNewTokens: p.config.generation.maxNewTokens, seed: k } }],
        { signal: job.signal, onDelta: (_key, delta) => void connection.sendNotification(TryPromptDeltaNotification.type, { jobId: params.jobId, step: k, delta }) },
      );
      steps.push(result?.text ?? '');
      void connection.sendNotification(TryPromptDeltaNotification.type, { jobId: params.jobId, step: k, delta: '', done: true });
      job.progress?.({ phase: 'try', done: k + 1, total: params.refinements + 1 });
    }
  } finally {
    await backend.close();
  }
  return { steps, model: model.name };
}
