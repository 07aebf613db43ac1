import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { engineSettings, RESTART_SETTINGS, RESTRICTED_SETTINGS } from '../src/settings';

/** package.json's contributions checked against the code, so neither drifts from the other. */
const ROOT = join(__dirname, '../..');
interface Manifest {
  main: string;
  activationEvents: string[];
  capabilities: { untrustedWorkspaces: { supported: string; restrictedConfigurations: string[] } };
  contributes: {
    commands: { command: string; title: string; category?: string }[];
    configuration: { properties: Record<string, { markdownDescription?: string; scope?: string }> };
    views: Record<string, { id: string }[]>;
    viewsContainers: { activitybar: { id: string; icon: string }[] };
    walkthroughs: { steps: { media: { markdown?: string }; completionEvents?: string[] }[] }[];
  };
}
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Manifest;
const sources = readdirSync(join(ROOT, 'extension/src'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).map((f) => readFileSync(join(ROOT, 'extension/src', f), 'utf8')).join('\n');

describe('package.json contributions', () => {
  it('contributes exactly the commands the extension registers, all in the ARIES category', () => {
    const registered = new Set([...sources.matchAll(/register(?:Command)?\('(aries\.[A-Za-z]+)'/g)].map((m) => m[1]!));
    const contributed = new Set(pkg.contributes.commands.map((c) => c.command));
    assert.deepEqual([...registered].sort(), [...contributed].sort());
    for (const c of pkg.contributes.commands) assert.equal(c.category, 'ARIES', c.command);
    for (const id of ['aries.initProject', 'aries.importPrompts', 'aries.generate', 'aries.score', 'aries.select', 'aries.openReview', 'aries.export', 'aries.train', 'aries.evaluate', 'aries.runRound', 'aries.tryPrompt', 'aries.restartEngine', 'aries.showLog']) {
      assert.ok(contributed.has(id), id);
    }
  });

  it('declares every setting the engine settings read, and each restricted / restart setting', () => {
    const read: string[] = [];
    engineSettings((k) => {
      read.push(`aries.${k}`);
      return undefined;
    });
    const props = pkg.contributes.configuration.properties;
    for (const k of [...read, ...RESTART_SETTINGS, ...RESTRICTED_SETTINGS]) assert.ok(props[k], `${k} is not in contributes.configuration`);
    for (const [k, v] of Object.entries(props)) assert.ok(k.startsWith('aries.') && v.markdownDescription, k);
    for (const k of RESTART_SETTINGS) assert.match(props[k]!.markdownDescription!, /restarts the engine/);
    assert.equal(props['aries.apiKey'], undefined, 'API keys live in SecretStorage, never in settings');
  });

  it('supports Restricted Mode in a limited way, ignoring the workspace values of settings that run programs', () => {
    const u = pkg.capabilities.untrustedWorkspaces;
    assert.equal(u.supported, 'limited');
    assert.deepEqual([...u.restrictedConfigurations].sort(), [...RESTRICTED_SETTINGS].sort());
  });

  it('activates narrowly, and everything it points at exists', () => {
    assert.ok(pkg.activationEvents.includes('workspaceContains:aries.json'));
    assert.ok(!pkg.activationEvents.includes('*') && !pkg.activationEvents.includes('onStartupFinished'));
    assert.equal(pkg.main, './dist/extension.js');
    for (const c of pkg.contributes.viewsContainers.activitybar) assert.ok(existsSync(join(ROOT, c.icon)), c.icon);
    assert.deepEqual(pkg.contributes.views.aries!.map((v) => v.id), ['aries.rounds', 'aries.trajectories', 'aries.exports', 'aries.trainingRuns']);
    for (const step of pkg.contributes.walkthroughs[0]!.steps) assert.ok(step.media.markdown && existsSync(join(ROOT, step.media.markdown)), step.media.markdown);
  });

  it('.vscodeignore is an allow-list that ships the bundles, the engine assets and the native modules', () => {
    const lines = readFileSync(join(ROOT, '.vscodeignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    assert.equal(lines[0], '**');
    for (const must of ['!dist/extension.js', '!dist/aries.js', '!engine/templates/*.json', '!engine/trainer/aries_trainer/*.py', '!examples/arithmetic/model/**', '!node_modules/better-sqlite3/build/Release/better_sqlite3.node', '!node_modules/onnxruntime-node/bin/napi-v6/linux/x64/**']) {
      assert.ok(lines.includes(must), must);
    }
  });
});
