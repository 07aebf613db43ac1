import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { API_KEY_ENV, engineSettings, settingsChangeEffect } from '../src/settings';

const reader = (values: Record<string, unknown>) => (key: string) => values[key];

describe('VS Code settings → EngineSettings', () => {
  it('leaves everything unset to aries.json when nothing is configured (defaults are empty)', () => {
    assert.deepEqual(engineSettings(reader({ backend: '', endpoint: '', refinementSteps: null, trainerCommand: null, 'sampling.topP': null, selectionStrategy: '' })), {});
  });

  it('maps every setting onto its EngineSettings field', () => {
    const s = engineSettings(
      reader({
        backend: 'openai', endpoint: ' http://127.0.0.1:8000/v1 ', openaiModel: 'qwen', modelPath: 'model', pythonPath: '/usr/bin/python3',
        trainerCommand: ['{python}', '-m', 'aries_trainer', 'dpo', '--config', '{config}'], refinementSteps: 2, selectionStrategy: 'rule',
        'sampling.temperature': 0, 'sampling.topP': 0.9, 'sampling.maxNewTokens': 32, databasePath: 'db/aries.db',
      }),
      API_KEY_ENV,
    );
    assert.deepEqual(s, {
      backend: 'openai', openaiBaseUrl: 'http://127.0.0.1:8000/v1', openaiModel: 'qwen', openaiApiKeyEnv: 'ARIES_OPENAI_API_KEY', modelPath: 'model', pythonPath: '/usr/bin/python3',
      trainerCommand: ['{python}', '-m', 'aries_trainer', 'dpo', '--config', '{config}'], refinements: 2, selectionStrategy: 'rule', temperature: 0, topP: 0.9, maxNewTokens: 32, databasePath: 'db/aries.db',
    });
  });

  it('drops values of the wrong type or outside the allowed names', () => {
    assert.deepEqual(engineSettings(reader({ backend: 'tpu', selectionStrategy: 'random', refinementSteps: '3', trainerCommand: ['ok', 3], 'sampling.temperature': Number.NaN })), {});
  });

  it('restarts the engine for aries.nodePath, reopens the project for the rest', () => {
    assert.equal(settingsChangeEffect((s) => s === 'aries' || s === 'aries.nodePath'), 'restart');
    assert.equal(settingsChangeEffect((s) => s === 'aries' || s === 'aries.refinementSteps'), 'update');
    assert.equal(settingsChangeEffect((s) => s === 'editor.fontSize'), 'none');
  });
});
