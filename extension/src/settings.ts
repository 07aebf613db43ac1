import type { EngineSettings } from '../../engine/src/protocol/engine';

/**
 * VS Code settings (contributes.configuration, `aries.*`) → the EngineSettings the engine lays
 * over aries.json. Unset values (null, '', []) are left out so aries.json decides. Read when
 * needed, never cached. Adding a setting: package.json → here → EngineSettings → engine's
 * project/settings.ts. No `vscode` import: unit-tested under plain Node.
 */

/** Reads one `aries.` setting by its key without the prefix (WorkspaceConfiguration.get). */
export type SettingsReader = (key: string) => unknown;

/** The environment variable the extension puts the API key in (from SecretStorage) when it starts the engine. */
export const API_KEY_ENV = 'ARIES_OPENAI_API_KEY';

/** Settings that take effect only when the engine process starts; changing one restarts it. */
export const RESTART_SETTINGS: readonly string[] = ['aries.nodePath'];

/** Settings that run or point at programs: VS Code ignores their workspace values in Restricted Mode. */
export const RESTRICTED_SETTINGS: readonly string[] = ['aries.nodePath', 'aries.pythonPath', 'aries.trainerCommand', 'aries.trainingLauncher', 'aries.accelerateConfig', 'aries.endpoint'];

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
function oneOf<T extends string>(v: unknown, allowed: readonly T[]): T | undefined {
  return typeof v === 'string' && (allowed as readonly string[]).includes(v) ? (v as T) : undefined;
}

/**
 * @param apiKeyEnv the variable the engine should read the key from, when the extension set one
 *   (a key is stored and the workspace is trusted); otherwise aries.json's apiKeyEnv stays.
 */
export function engineSettings(read: SettingsReader, apiKeyEnv?: string): EngineSettings {
  const s: EngineSettings = {
    backend: oneOf(read('backend'), ['onnx', 'openai'] as const),
    openaiBaseUrl: str(read('endpoint')),
    openaiModel: str(read('openaiModel')),
    openaiApiKeyEnv: apiKeyEnv,
    modelPath: str(read('modelPath')),
    pythonPath: str(read('pythonPath')),
    trainingLauncher: oneOf(read('trainingLauncher'), ['python', 'accelerate'] as const),
    accelerateConfig: str(read('accelerateConfig')),
    refinements: num(read('refinementSteps')),
    selectionStrategy: oneOf(read('selectionStrategy'), ['verifier', 'rule', 'rm'] as const),
    temperature: num(read('sampling.temperature')),
    topP: num(read('sampling.topP')),
    maxNewTokens: num(read('sampling.maxNewTokens')),
    databasePath: str(read('databasePath')),
  };
  const command = read('trainerCommand');
  if (Array.isArray(command) && command.length > 0 && command.every((a) => typeof a === 'string')) s.trainerCommand = command as string[];
  // Leave unset keys out, so the message shows exactly what overrides aries.json.
  return Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined)) as EngineSettings;
}

/** Which of the changed settings need what: a new engine process, or just new settings sent to it. */
export function settingsChangeEffect(affects: (section: string) => boolean): 'restart' | 'update' | 'none' {
  if (RESTART_SETTINGS.some((k) => affects(k))) return 'restart';
  return affects('aries') ? 'update' : 'none';
}
