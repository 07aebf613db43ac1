import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exportRound } from '../src/export/dataset';
import { addOverride, undoOverride } from '../src/override/overrides';
import { importPrompts } from '../src/prompt/import';
import type { DatasetRow } from '../src/protocol/trainer';
import { agreement, cohensKappa } from '../src/review/agreement';
import { dashboard } from '../src/review/dashboard';
import { editStep } from '../src/review/edit';
import { ftsQuery, getTrajectory, listTrajectories } from '../src/review/queries';
import { openRound, type RoundRow } from '../src/round/rounds';
import { scoreSteps } from '../src/score/score-steps';
import { VerifierScorer } from '../src/score/verifier';
import { selectRound } from '../src/selection/select-round';
import { jsonl, tempProject, writeTrajectories } from './support/temp-project';

describe('review: list, filters, search, detail, edits, agreement, dashboard', () => {
  let t: ReturnType<typeof tempProject>;
  let round: RoundRow;
  const id = (promptId: string): number => (t.project.db.prepare('SELECT id FROM trajectories WHERE prompt_id = ?').get(promptId) as { id: number }).id;
  const stepIds = (promptId: string): number[] => (t.project.db.prepare('SELECT s.id FROM steps s JOIN trajectories t ON t.id = s.trajectory_id WHERE t.prompt_id = ? AND s.origin = \'model\' ORDER BY s.idx').all(promptId) as { id: number }[]).map((r) => r.id);

  before(async () => {
    t = tempProject({ selection: { strategy: 'verifier', compute: ['rule'] } });
    writeFileSync(join(t.root, 'p.jsonl'), jsonl([
      { id: 'a', prompt: 'Ann has 40 apples and buys 2 more.', answer: 42 },
      { id: 'b', prompt: 'What is 5+5?', answer: 10 },
      { id: 'c', prompt: 'What is 1+1?', answer: 2 },
      { id: 'd', prompt: 'What is 7+1?', answer: 8 },
    ]));
    importPrompts(t.project.db, join(t.root, 'p.jsonl'));
    round = openRound(t.project);
    writeTrajectories(t, round, {
      a: ['#### 41', '#### 42', '#### 42'], // verifier pair; rule pair, same pair → agree
      b: ['#### 10', '#### 11'], // verifier: 0 over 1; rule: 1 over 0 → disagree
      c: ['#### 2', '#### 2'], // verifier: all correct → skip; rule: repeat → skip
      d: ['#### 9', '#### 9 seven'], // verifier: none correct → skip; rule: pair (length ratio 2) → disagree
    });
    await scoreSteps(t.project.db, { kind: 'round', id: round.id }, new VerifierScorer());
    selectRound(t.project.db, round.id, t.project.config.selection.compute, t.project.config.selection);
  });
  after(() => t.dispose());

  const ids = (filter: Parameters<typeof listTrajectories>[1]['filter'], search?: string): string[] =>
    listTrajectories(t.project.db, { round: null, filter, search, offset: 0, limit: 50 }).items.map((i) => i.promptId);

  it('groups trajectories by what needs a person', () => {
    assert.deepEqual(ids('all'), ['a', 'b', 'c', 'd']);
    assert.deepEqual(ids('needs-review'), ['b', 'd']);
    assert.deepEqual(ids('auto-selected'), ['a']);
    assert.deepEqual(ids('skipped'), ['c']);
    assert.deepEqual(ids('disagreement'), ['b', 'd']);
    assert.deepEqual(ids('overridden'), []);
    const page = listTrajectories(t.project.db, { round: 1, filter: 'all', offset: 1, limit: 2 });
    assert.deepEqual([page.total, page.reviewed, page.all, page.items.length], [4, 0, 4, 2]);
  });

  it('keeps every group count equal to its rows (counts come from review_counts, kept by triggers)', () => {
    const check = (): void => {
      for (const filter of ['all', 'needs-review', 'auto-selected', 'skipped', 'overridden', 'disagreement', 'low-margin'] as const) {
        const page = listTrajectories(t.project.db, { round: null, filter, offset: 0, limit: 500 });
        assert.equal(page.total, page.items.length, filter);
      }
      const all = listTrajectories(t.project.db, { round: null, filter: 'all', offset: 0, limit: 500 });
      assert.equal(all.all, all.items.length);
      assert.equal(all.reviewed, all.items.filter((i) => i.override !== null).length);
    };
    check();
    addOverride(t.project.db, { trajectoryId: id('c'), curator: 'zed', action: 'tie' });
    check();
    undoOverride(t.project.db, id('c'), 'zed');
    selectRound(t.project.db, round.id, ['verifier'], t.project.config.selection);
    check();
    selectRound(t.project.db, round.id, t.project.config.selection.compute, t.project.config.selection);
    check();
  });

  it('pages by keyset: after a seq gives the rows that follow', () => {
    const all = listTrajectories(t.project.db, { round: null, filter: 'all', offset: 0, limit: 500 }).items;
    const next = listTrajectories(t.project.db, { round: null, filter: 'all', offset: 999, limit: 2, afterSeq: all[0]?.seq }).items;
    assert.deepEqual(next.map((i) => i.id), all.slice(1, 3).map((i) => i.id));
  });

  it('searches prompts and responses with user text that is never query syntax', () => {
    assert.deepEqual(ids('all', 'apples'), ['a']);
    assert.deepEqual(ids('all', 'seven'), ['d']);
    assert.deepEqual(ids('all', '"; DROP TABLE steps; --'), []);
    assert.equal(ftsQuery('NEAR(a b) OR c*'), '"NEAR" "a" "b" "OR" "c"');
  });

  it('shows each step with the prompt the model saw, scores and every strategy', () => {
    const d = getTrajectory(t.project.db, id('b'), t.project.template, 'verifier');
    assert.equal(d.steps.length, 2);
    assert.equal(d.steps[0]?.prompt, 'What is 5+5?');
    assert.match(d.steps[1]?.prompt ?? '', /What is 5\+5\?\nPrevious answer: #### 10/);
    assert.equal(d.steps[0]?.scores.verifier?.value, 1);
    assert.deepEqual(d.selections.map((s) => [s.strategy, s.status]), [['rule', 'pair'], ['verifier', 'pair']]);
    assert.deepEqual(d.effective, { chosenStepId: stepIds('b')[0], rejectedStepId: stepIds('b')[1], source: 'auto' });
  });

  it('saves overrides and edits at once; export uses them; undo restores', () => {
    const [b0, b1] = stepIds('b');
    addOverride(t.project.db, { trajectoryId: id('b'), curator: 'ana', action: 'swap', strategy: 'verifier' });
    assert.deepEqual(ids('overridden'), ['b']);
    assert.deepEqual(ids('needs-review'), ['d']);
    const edited = editStep(t.project.db, b1 as number, '5+5=10. #### 10', 'ana');
    addOverride(t.project.db, { trajectoryId: id('d'), curator: 'ana', action: 'pair', chosenStepId: editStep(t.project.db, stepIds('d')[1] as number, '7+1=8 #### 8', 'ana').id, rejectedStepId: stepIds('d')[0] });
    const d = getTrajectory(t.project.db, id('d'), t.project.template, 'verifier');
    assert.equal(d.steps.filter((s) => s.origin === 'curator').length, 1);
    assert.equal(d.effective?.source, 'override');
    const rows = readFileSync(exportRound(t.project, round.id).path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as DatasetRow);
    const dRow = rows.find((r) => r.prompt_id === 'd' && r.kind === 'direct');
    assert.deepEqual(dRow?.chosen, [{ role: 'assistant', content: '7+1=8 #### 8' }]);
    const bRow = rows.find((r) => r.prompt_id === 'b' && r.kind === 'direct');
    assert.equal(bRow?.chosen_step_id, b1, 'swap puts the old rejected first');
    assert.equal(bRow?.rejected_step_id, b0);
    assert.ok(edited.id > 0);
    undoOverride(t.project.db, id('b'), 'ana');
    assert.deepEqual(ids('overridden'), ['d']);
  });

  it('measures agreement with strategies and between curators', () => {
    addOverride(t.project.db, { trajectoryId: id('a'), curator: 'ana', action: 'accept', strategy: 'verifier' });
    addOverride(t.project.db, { trajectoryId: id('a'), curator: 'ben', action: 'accept', strategy: 'verifier' });
    addOverride(t.project.db, { trajectoryId: id('c'), curator: 'ana', action: 'tie' });
    addOverride(t.project.db, { trajectoryId: id('c'), curator: 'ben', action: 'discard' });
    const a = agreement(t.project.db, round.id);
    assert.deepEqual(a.humanVsStrategy.verifier, { compared: 3, agreed: 2, rate: 2 / 3 });
    assert.equal(a.curators.length, 1);
    assert.deepEqual([a.curators[0]?.a, a.curators[0]?.b, a.curators[0]?.items, a.curators[0]?.observed], ['ana', 'ben', 2, 1]);
    assert.equal(a.curators[0]?.kappa, 1);
  });

  it("computes Cohen's kappa like the textbook", () => {
    // 50 items: both yes 20, both no 15, a-yes/b-no 5, a-no/b-yes 10 -> po 0.7, pe 0.5, kappa 0.4
    const pairs: [string, string][] = [
      ...Array.from({ length: 20 }, (): [string, string] => ['y', 'y']),
      ...Array.from({ length: 15 }, (): [string, string] => ['n', 'n']),
      ...Array.from({ length: 5 }, (): [string, string] => ['y', 'n']),
      ...Array.from({ length: 10 }, (): [string, string] => ['n', 'y']),
    ];
    const k = cohensKappa(pairs);
    assert.ok(Math.abs(k.observed - 0.7) < 1e-12 && Math.abs((k.kappa ?? 0) - 0.4) < 1e-12);
  });

  it('feeds the dashboard: override rate, selection counts, length-bias monitor', () => {
    const d = dashboard(t.project.db, 'verifier');
    const r = d.rounds[0];
    assert.equal(r?.trajectories, 4);
    assert.equal(r?.overridden, 3);
    assert.deepEqual(r?.selection.verifier, { pairs: 2, skipped: 2 });
    assert.equal(r?.lengths.byStep.length, 3);
    assert.ok((r?.lengths.chosen ?? 0) > 0 && (r?.lengths.rejected ?? 0) > 0);
  });
});
