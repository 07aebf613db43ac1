import type { ModelRow } from '../model/registry';
import type { Project } from '../project/project';
import type { GenerationBackend } from './backend';
import { OnnxBackend } from './onnx/backend';
import { OpenAIBackend } from './openai/backend';

/** The backend that generates with a registered model, as the project's config says. */
export async function openBackend(p: Project, model: ModelRow, batchSize = p.config.generation.batchSize): Promise<GenerationBackend> {
  const g = p.config.generation;
  if (model.backend === 'openai') {
    return new OpenAIBackend({
      baseUrl: g.openai.baseUrl,
      model: model.path,
      mode: g.openai.mode,
      maxConcurrency: g.openai.maxConcurrency,
      apiKeyEnv: g.openai.apiKeyEnv,
      requestTimeoutMs: g.openai.timeoutMs,
      serverStop: g.openai.serverStop,
      loadFirst: g.openai.loadFirst,
      logger: p.log,
    });
  }
  return OnnxBackend.open({ modelDir: model.path, batchSize, intraOpNumThreads: g.threads || undefined, weights: g.onnxWeights, cacheGraph: g.onnxCache, continuousBatching: g.continuousBatching, prefixCacheBytes: g.prefixCacheMiB * 2 ** 20, speculativeTokens: g.speculativeTokens, logger: p.log });
}
