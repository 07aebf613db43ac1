import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from './support/tiny-model';

// docs/protocol.md is the reference for the extension ↔ engine protocol: every method the
// protocol file declares has its row there, and the table names no method the file lacks.

test('every JSON-RPC method in engine/src/protocol/engine.ts has a row in docs/protocol.md, and no row is stale', () => {
  const source = readFileSync(join(REPO_ROOT, 'engine/src/protocol/engine.ts'), 'utf8');
  const declared = new Set([...source.matchAll(/export const method = '(aries\/[A-Za-z]+)'/g)].map((m) => m[1]!));
  assert.ok(declared.size >= 27, `found ${declared.size} methods: the pattern no longer matches the file`);
  const doc = readFileSync(join(REPO_ROOT, 'docs/protocol.md'), 'utf8');
  const documented = new Set([...doc.matchAll(/^\| `(aries\/[A-Za-z]+)` \|/gm)].map((m) => m[1]!));
  assert.deepEqual([...declared].filter((m) => !documented.has(m)), [], 'methods without a row in docs/protocol.md');
  assert.deepEqual([...documented].filter((m) => !declared.has(m)), [], 'rows in docs/protocol.md for methods the protocol does not have');
});
