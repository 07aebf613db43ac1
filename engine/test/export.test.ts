import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exportRound } from '../src/export/dataset';
import { addOverride, undoOverride } from '../src/override/overrides';
import { importPrompts } from '../src/prompt/import';
import type { DatasetRow } from '../src/protocol/trainer';
import { renderRefinement } from '../src/refinement/template';
import { openRound, type RoundRow } from '../src/round/rounds';
import { scoreSteps } from '../src/score/score-steps';
import { VerifierScorer } from '../src/score/verifier';
import { selectRound } from '../src/selection/select-round';
import { jsonl, tempProject, writeTrajectories } from './support/temp-project';

describe('selection, overrides and export of a round', () => {
  let t: ReturnType<typeof tempProject>;
  let round: RoundRow;
  before(async () => {
    t = tempProject({ selection: { strategy: 'verifier', compute: ['rule'] } });
    writeFileSync(join(t.root, 'p.jsonl'), jsonl([
      { id: 'a', prompt: 'What is 40+2?', answer: 42 },
      { id: 'b', prompt: 'What is 5+5?', answer: 10 },
      { id: 'c', messages: [{ role: 'user', content: 'What is 1+1?' }], answer: 2 },
    ]));
    importPrompts(t.project.db, join(t.root, 'p.jsonl'));
    round = openRound(t.project);
    writeTrajectories(t, round, {
      a: ['#### 41', '#### 42', '#### 42'],
      b: ['#### 10', '#### 11'],
      c: ['#### 3', '#### 2'],
    });
    await scoreSteps(t.project.db, { kind: 'round', id: round.id }, new VerifierScorer());
  });
  after(() => t.dispose());

  it('computes every configured strategy and records reasons', () => {
    const s = selectRound(t.project.db, round.id, t.project.config.selection.compute, t.project.config.selection);
    assert.deepEqual(s.byStrategy.verifier, { pairs: 3, skipped: 0 });
    assert.deepEqual(s.byStrategy.rule, { pairs: 3, skipped: 0 });
    const reasons = t.project.db.prepare("SELECT reason FROM selections WHERE strategy = 'verifier' ORDER BY trajectory_id").all() as { reason: string }[];
    assert.equal(reasons[0]?.reason, 'correct step 2 over incorrect step 0');
    assert.equal(reasons[1]?.reason, 'correct step 0 over incorrect step 1');
  });

  it('exports direct and refine rows with the shared template, manifest and sha256', () => {
    const r = exportRound(t.project, round.id);
    const body = readFileSync(r.path, 'utf8');
    assert.equal(createHash('sha256').update(body).digest('hex'), r.sha256);
    const rows = body.trim().split('\n').map((l) => JSON.parse(l) as DatasetRow);
    assert.deepEqual([r.counts.direct, r.counts.refine, r.counts.total], [3, 3, 6]);
    const direct = rows.find((x) => x.prompt_id === 'a' && x.kind === 'direct');
    const refine = rows.find((x) => x.prompt_id === 'a' && x.kind === 'refine');
    assert.deepEqual(direct?.prompt, [{ role: 'user', content: 'What is 40+2?' }]);
    assert.deepEqual(direct?.chosen, [{ role: 'assistant', content: '#### 42' }]);
    assert.deepEqual(direct?.rejected, [{ role: 'assistant', content: '#### 41' }]);
    assert.deepEqual(refine?.prompt, [{ role: 'user', content: renderRefinement(t.project.template, 'What is 40+2?', '#### 41') }]);
    assert.equal(refine?.strategy, 'verifier');
    const manifest = JSON.parse(readFileSync(r.manifestPath, 'utf8')) as { sha256: string; counts: { total: number } };
    assert.equal(manifest.sha256, r.sha256);
    assert.equal(manifest.counts.total, 6);
  });

  it('adds keep rows refine(x, y_w) -> y_w over y_l with the keep kind', () => {
    const r = exportRound(t.project, round.id, { kinds: ['direct', 'refine', 'keep'], path: 'keep/train.jsonl' });
    assert.deepEqual([r.counts.direct, r.counts.refine, r.counts.keep, r.counts.total], [3, 3, 3, 9]);
    const rows = readFileSync(r.path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as DatasetRow);
    const keep = rows.filter((x) => x.kind === 'keep');
    assert.deepEqual(keep.map((x) => x.id), rows.filter((x) => x.kind === 'direct').map((x) => x.id.replace(/-direct$/, '-keep')));
    const a = keep.find((x) => x.prompt_id === 'a');
    assert.deepEqual(a?.prompt, [{ role: 'user', content: renderRefinement(t.project.template, 'What is 40+2?', '#### 42') }]);
    assert.deepEqual([a?.chosen, a?.rejected], [[{ role: 'assistant', content: '#### 42' }], [{ role: 'assistant', content: '#### 41' }]]);
    const c = keep.find((x) => x.prompt_id === 'c');
    assert.deepEqual(c?.prompt, [{ role: 'user', content: renderRefinement(t.project.template, 'What is 1+1?', '#### 2') }], 'a chat prompt gets the template in its last user message');
  });

  it('lets a human override win, and undo restore the automatic pair', () => {
    const traj = (t.project.db.prepare("SELECT id FROM trajectories WHERE prompt_id = 'b'").get() as { id: number }).id;
    addOverride(t.project.db, { trajectoryId: traj, curator: 'ana', action: 'discard' });
    let r = exportRound(t.project, round.id);
    assert.deepEqual([r.counts.pairs, r.counts.skipped, r.counts.overridden], [2, 1, 1]);
    undoOverride(t.project.db, traj, 'ana');
    const steps = t.project.db.prepare('SELECT id FROM steps WHERE trajectory_id = ? ORDER BY idx').all(traj) as { id: number }[];
    addOverride(t.project.db, { trajectoryId: traj, curator: 'ana', action: 'pair', chosenStepId: steps[1]?.id, rejectedStepId: steps[0]?.id, note: 'prefer the second' });
    r = exportRound(t.project, round.id, { format: 'string' });
    const rows = readFileSync(r.path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as DatasetRow);
    const b = rows.find((x) => x.prompt_id === 'b' && x.kind === 'direct');
    assert.equal(b?.strategy, 'human');
    assert.equal(b?.curator, 'ana');
    assert.equal(b?.chosen, '#### 11');
    assert.equal(b?.prompt, 'What is 5+5?');
  });

  it('rejects bad overrides and export paths outside the project', () => {
    const traj = (t.project.db.prepare("SELECT id FROM trajectories WHERE prompt_id = 'a'").get() as { id: number }).id;
    const other = (t.project.db.prepare("SELECT s.id FROM steps s JOIN trajectories t ON t.id = s.trajectory_id WHERE t.prompt_id = 'c' LIMIT 1").get() as { id: number }).id;
    assert.throws(() => addOverride(t.project.db, { trajectoryId: traj, curator: 'ana', action: 'pair', chosenStepId: other, rejectedStepId: other + 1 }), /is not a step of trajectory/);
    assert.throws(() => addOverride(t.project.db, { trajectoryId: 99999, curator: 'ana', action: 'tie' }), /does not exist/);
    assert.throws(() => exportRound(t.project, round.id, { path: '../outside.jsonl' }), /outside the project folder/);
    assert.throws(() => exportRound(t.project, round.id, { path: '/tmp/outside.jsonl' }), /outside the project folder/);
  });
});
