import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from './support/tiny-model';

// The protocol files are leaves: they import only the JSON-RPC library and each other, so no
// import cycle can run through them (the engine's rooms import the protocol, never the reverse),
// and the extension imports nothing of the engine but the protocol.

const importsOf = (file: string): string[] => [...readFileSync(file, 'utf8').matchAll(/^(?:import|export)\s[^;]*?from\s+'([^']+)'/gms)].map((m) => m[1]!);

test('engine/src/protocol/*.ts import only vscode-languageserver-protocol and one another', () => {
  const dir = join(REPO_ROOT, 'engine/src/protocol');
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
  assert.ok(files.length >= 3);
  for (const f of files) {
    const bad = importsOf(join(dir, f)).filter((spec) => spec !== 'vscode-languageserver-protocol' && !/^\.\/[a-z-]+$/.test(spec));
    assert.deepEqual(bad, [], `${f} imports engine modules`);
  }
});

test('the extension imports nothing of the engine but its protocol files', () => {
  const root = join(REPO_ROOT, 'extension/src');
  const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : e.name.endsWith('.ts') ? [join(d, e.name)] : []));
  const offenders = walk(root).flatMap((file) => importsOf(file).filter((spec) => spec.includes('engine/src/') && !spec.includes('engine/src/protocol/')).map((spec) => `${file.slice(REPO_ROOT.length + 1)}: ${spec}`));
  assert.deepEqual(offenders, []);
});
