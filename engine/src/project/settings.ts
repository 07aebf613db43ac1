import type { EngineSettings } from '../protocol/engine';
import { computedStrategies, type ProjectConfig } from './config';

/** The project config with VS Code's settings laid over it (settings win where they are set). */
export function applySettings(config: ProjectConfig, s: EngineSettings): ProjectConfig {
  const g = config.generation;
  return {
    ...config,
    model: s.modelPath || config.model,
    generation: {
      ...g,
      backend: s.backend ?? g.backend,
      refinements: s.refinements ?? g.refinements,
      temperature: s.temperature ?? g.temperature,
      topP: s.topP ?? g.topP,
      maxNewTokens: s.maxNewTokens ?? g.maxNewTokens,
      openai: {
        ...g.openai,
        baseUrl: s.openaiBaseUrl || g.openai.baseUrl,
        model: s.openaiModel || g.openai.model,
        apiKeyEnv: s.openaiApiKeyEnv || g.openai.apiKeyEnv,
      },
    },
    selection: { ...config.selection, strategy: s.selectionStrategy ?? config.selection.strategy, compute: computedStrategies(s.selectionStrategy ?? config.selection.strategy, config.selection.compute) },
    training: {
      ...config.training,
      python: s.pythonPath || config.training.python,
      command: s.trainerCommand && s.trainerCommand.length > 0 ? s.trainerCommand : config.training.command,
      launcher: s.trainingLauncher ?? config.training.launcher,
      accelerateConfig: s.accelerateConfig || config.training.accelerateConfig,
    },
  };
}
