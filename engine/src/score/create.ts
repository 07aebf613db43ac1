import { join } from 'node:path';
import { badInput } from '../errors';
import { PROJECT_FILE, projectPath } from '../project/config';
import type { Project } from '../project/project';
import { OnnxRewardScorer } from './reward-onnx';
import { HttpRewardScorer } from './reward-http';
import type { Scorer } from './scorer';
import { SolutionScorer, VerifierScorer } from './verifier';

export const SCORER_NAMES = ['verifier', 'verifier:solution', 'rm:onnx', 'rm:http'] as const;

/** The checks against the prompt's reference: instant, nothing to open. */
const REFERENCE_SCORERS: Record<string, () => Scorer> = {
  verifier: () => new VerifierScorer(),
  'verifier:solution': () => new SolutionScorer(),
};

/**
 * The reference checks among the scorers aries.json names: what can score an answer a curator
 * just wrote at once (reward models score it with the next `score`).
 */
export function referenceScorers(p: Project): Scorer[] {
  return p.config.scoring.scorers.flatMap((name) => REFERENCE_SCORERS[name]?.() ?? []);
}

/**
 * The scorers named in aries.json (scoring.scorers): 'verifier', 'verifier:solution' (the worked
 * solution matches the reference's), 'rm:onnx' (rewardModel.onnxPath,
 * onnxLabel, onnxBatchSize; onnxruntime threads from generation.threads) and 'rm:http'
 * (rewardModel.httpUrl, httpModel, httpEndpoint, httpEndpointPath, httpInput, httpLabel,
 * httpMaxConcurrency, httpTimeoutMs, apiKeyEnv). If one cannot be opened, those already open are closed.
 */
export async function openScorers(p: Project): Promise<Scorer[]> {
  const opened: Scorer[] = [];
  try {
    for (const name of p.config.scoring.scorers) opened.push(await openScorer(p, name));
  } catch (err) {
    for (const s of opened) await s.close?.();
    throw err;
  }
  return opened;
}

/** One scorer by its scoring.scorers name, opened from aries.json's settings. */
export async function openScorer(p: Project, name: string): Promise<Scorer> {
  const file = join(p.root, PROJECT_FILE);
  const rm = p.config.rewardModel;
  const unset = (key: string, what: string) => badInput(`${file}: scoring.scorers has ${name} but rewardModel.${key} is empty`, `set it to ${what}`);
  const reference = REFERENCE_SCORERS[name];
  if (reference) return reference();
  switch (name) {
    case 'rm:onnx':
      if (!rm.onnxPath) throw unset('onnxPath', 'a folder with onnx/model.onnx (e.g. one written by `python -m aries_trainer rm`)');
      return OnnxRewardScorer.open({
        modelDir: projectPath(p.root, rm.onnxPath),
        ...(rm.onnxLabel !== null ? { label: rm.onnxLabel } : {}),
        batchSize: rm.onnxBatchSize,
        intraOpNumThreads: p.config.generation.threads || undefined,
        logger: p.log,
      });
    case 'rm:http':
      if (!rm.httpUrl) throw unset('httpUrl', "the reward server's root, e.g. http://127.0.0.1:8001");
      if (!rm.httpModel) throw unset('httpModel', 'the model name the server serves');
      return new HttpRewardScorer({
        baseUrl: rm.httpUrl,
        model: rm.httpModel,
        endpoint: rm.httpEndpoint,
        ...(rm.httpEndpointPath ? { endpointPath: rm.httpEndpointPath } : {}),
        input: rm.httpInput,
        ...(rm.httpLabel !== null ? { label: rm.httpLabel } : {}),
        maxConcurrency: rm.httpMaxConcurrency,
        requestTimeoutMs: rm.httpTimeoutMs,
        apiKeyEnv: rm.apiKeyEnv,
        logger: p.log,
      });
    default:
      throw badInput(`${file}: scoring.scorers has unknown scorer "${name}"`, `use ${SCORER_NAMES.map((n) => `"${n}"`).join(', ')}`);
  }
}
