import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { runCli } from './support/bundled-cli';
import { tinyModel } from './support/tiny-model';

const model = tinyModel();

test('aries eval with no held-out prompts: exit 2, what to do, and no evaluation left behind; the files aries.json names are imported first', { skip: model.skip }, () => {
  const root = mkdtempSync(join(tmpdir(), 'aries-eval-input-'));
  try {
    writeFileSync(join(root, 'aries.json'), JSON.stringify({ name: 'e', model: model.dir, prompts: { train: [], heldout: [] } }));
    const r = runCli(['eval', '-p', root]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /no prompts in split "heldout" to evaluate on; import some with `aries import FILE --split heldout`/);
    const db = new Database(join(root, '.aries/aries.db'), { readonly: true });
    assert.equal((db.prepare('SELECT COUNT(*) AS n FROM evaluations').get() as { n: number }).n, 0);
    db.close();
    writeFileSync(join(root, 'heldout.jsonl'), `${JSON.stringify({ id: 'h1', prompt: 'Compute 12+30.', answer: 42 })}\n`);
    writeFileSync(join(root, 'aries.json'), JSON.stringify({ name: 'e', model: model.dir, prompts: { heldout: ['heldout.jsonl'] }, evaluation: { refinements: 1, maxNewTokens: 8 } }));
    const ok = runCli(['eval', '-p', root, '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((JSON.parse(ok.stdout) as { n: number }).n, 1, 'the held-out file named in aries.json was imported and evaluated');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
