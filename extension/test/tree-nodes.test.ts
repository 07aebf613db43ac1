import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RunReport } from '../../engine/src/round/run-loop';
import type { ProjectStats } from '../../engine/src/round/stats';
import type { TrajectoryGroups } from '../../engine/src/server/trajectory-groups';
import { exportsTree, roundsTree, trainingRunsTree, trajectoriesTree } from '../src/views/tree-nodes';

const stats = (rounds: ProjectStats['rounds'], models: ProjectStats['models']): ProjectStats => ({
  project: '/p', database: '/p/.aries/aries.db', schemaVersion: 2, prompts: { train: 16 }, rounds, selections: {}, models, exports: 1, trainingRuns: {},
});

describe('what the ARIES views show', () => {
  it('Rounds: empty before the first round (so the welcome shows), then base, rounds with metrics and lineage, models', () => {
    const noRounds = stats([], [{ id: 1, name: 'base', parent: null, round: null, current: true, path: '/p/model' }]);
    assert.deepEqual(roundsTree({ base: { model: 'base', evaluation: null }, rounds: [] }, noRounds), []);

    const ev = { evaluationId: 2, modelId: 2, n: 8, direct: 0.5, refineAt: [0.625], meanLength: [] };
    const report: RunReport = {
      base: { model: 'base', evaluation: { ...ev, direct: 0.25, refineAt: [0.25] } },
      rounds: [{ round: 1, model: 'round-1', evaluation: ev, pairs: { direct: 6, refine: 5, keep: 0 }, trainLoss: 0.41, rewardMargin: 1.2, rewardAccuracy: 0.8, seconds: { generate: 12.4, train: 3.25 } }],
    };
    const s = stats(
      [
        { round: 1, status: 'trained', trajectories: 16, steps: 40, overrides: 2, error: null },
        { round: 2, status: 'failed', trajectories: 3, steps: 6, overrides: 0, error: 'trainer exited with 3' },
      ],
      [
        { id: 1, name: 'base', parent: null, round: null, current: false, path: '/p/model' },
        { id: 2, name: 'round-1', parent: 1, round: 1, current: true, path: '/p/.aries/models/round-1-run-1' },
      ],
    );
    const nodes = roundsTree(report, s);
    assert.deepEqual(nodes.map((n) => n.label), ['Base model: base', 'Round 1', 'Round 2', 'Models']);
    assert.equal(nodes[0]!.description, 'direct 25.0% → refine@1 25.0%');
    const r1 = nodes[1]!;
    assert.equal(r1.description, 'direct 50.0% → refine@1 62.5% · loss 0.41');
    assert.equal(r1.icon, 'pass');
    const child = (label: string) => r1.children!.find((c) => c.label === label)?.description;
    assert.equal(child('Trajectories'), '16 · 40 steps · 2 overridden');
    assert.equal(child('Pairs'), '6 direct, 5 refine');
    assert.equal(child('Training'), 'loss 0.41 · reward margin 1.2 · accuracy 80.0%');
    assert.equal(child('Time'), 'generate 12s, train 3.3s');
    assert.equal(child('Model'), 'round-1 ← base (current)');
    const r2 = nodes[2]!;
    assert.equal(r2.icon, 'error');
    assert.equal(r2.expanded, true, 'the newest round is open');
    assert.equal(r2.children!.find((c) => c.label === 'Status')!.description, 'failed: trainer exited with 3');
    assert.deepEqual(nodes[3]!.children!.map((m) => `${m.label} ${m.description}`), ['base starting model', 'round-1 ← base · round 1 · current']);
    assert.equal(new Set(nodes.flatMap((n) => [n.id, ...(n.children ?? []).map((c) => c.id)])).size, nodes.reduce((k, n) => k + 1 + (n.children?.length ?? 0), 0), 'ids are unique');
  });

  it('Trajectories: four groups with counts, items open the review, and a "more" item past the limit', () => {
    const g: TrajectoryGroups = {
      round: 1, strategy: 'verifier', total: 3,
      groups: [
        { name: 'needs-review', count: 2, items: [{ id: 7, seq: 0, promptId: 'p0', preview: '3+4=\n', steps: 3, detail: 'strategies disagree' }] },
        { name: 'auto-selected', count: 1, items: [{ id: 8, seq: 1, promptId: 'p1', preview: '5+5=', steps: 3, detail: 'verifier: step 2 over step 0' }] },
        { name: 'overridden', count: 0, items: [] },
        { name: 'skipped', count: 0, items: [] },
      ],
    };
    const nodes = trajectoriesTree(g);
    assert.deepEqual(nodes.map((n) => `${n.label} ${n.description}`), ['Needs review 2', 'Auto-selected 1', 'Overridden 0', 'Skipped 0']);
    assert.equal(nodes[0]!.expanded, true);
    assert.equal(nodes[0]!.children![0]!.label, '#1 3+4=');
    assert.deepEqual(nodes[0]!.children![0]!.command?.arguments, [7]);
    assert.equal(nodes[0]!.children![1]!.label, '… 1 more');
    assert.deepEqual(trajectoriesTree({ ...g, round: null }), []);
  });

  it('Exports and Training runs: newest first as given, opening the dataset / the train.log', () => {
    const e = exportsTree([{ id: 3, round: 2, path: '/p/.aries/exports/round-2/train.jsonl', sha256: 'ab', counts: { total: 16, direct: 6, refine: 5, keep: 0, pairs: 6, skipped: 10, overridden: 1, byStrategy: {} }, createdAt: 't' }]);
    assert.deepEqual([e[0]!.label, e[0]!.description, e[0]!.command?.arguments], ['Round 2 · train.jsonl', '11 rows (6 direct, 5 refine)', ['/p/.aries/exports/round-2/train.jsonl']]);
    const withKeep = exportsTree([{ id: 4, round: 3, path: '/p/x.jsonl', sha256: 'cd', counts: { total: 18, direct: 6, refine: 6, keep: 6, pairs: 6, skipped: 0, overridden: 0, byStrategy: {} }, createdAt: 't' }]);
    assert.equal(withKeep[0]!.description, '18 rows (6 direct, 6 refine, 6 keep)');
    const runs = trainingRunsTree([
      { id: 2, round: 2, status: 'failed', logPath: '/p/.aries/runs/run-2/train.log', outputDir: '/o', baseModel: 'round-1', model: null, exitCode: 3, error: 'NaN loss', startedAt: 't0', finishedAt: 't1', steps: 4, lastMetrics: { loss: 0.7 } },
    ]);
    assert.equal(runs[0]!.description, 'failed · loss 0.7');
    assert.equal(runs[0]!.icon, 'error');
    assert.match(runs[0]!.tooltip!, /error: NaN loss/);
    assert.deepEqual(runs[0]!.command?.arguments, ['/p/.aries/runs/run-2/train.log']);
  });
});
