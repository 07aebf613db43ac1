import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RunReport } from '../../engine/src/round/run-loop';
import { fmt, ProgressTracker, progressMessage, roundSummary } from '../src/progress-text';

const ev = (phase: string, done: number, total: number, extra: { message?: string; metrics?: Record<string, number> } = {}) => ({ jobId: 'j', phase, done, total, ...extra });

describe('progress text', () => {
  it('says the phase, live counts and, while training, loss and reward margin', () => {
    assert.equal(progressMessage(ev('generate', 120, 400)), 'Generating · 120/400 steps');
    assert.equal(progressMessage(ev('score', 0, 30, { message: 'verifier' })), 'Scoring (verifier) · 0/30 steps');
    assert.equal(progressMessage(ev('train', 12, 26, { metrics: { loss: 0.51234, 'rewards/margins': 0.8321, 'rewards/accuracies': 0.75 } })), 'Training · 12/26 steps · loss 0.512 · reward margin 0.832 · accuracy 75.0%');
    assert.equal(progressMessage(ev('mystery', 0, 0)), 'mystery');
    assert.equal(fmt(null), '–');
    assert.equal(fmt(1234.5), '1235');
  });

  it('moves the bar forward within a phase and never backward', () => {
    const t = new ProgressTracker(true);
    assert.equal(t.update(ev('generate', 10, 100)).increment, 10);
    assert.equal(t.update(ev('generate', 10, 100)).increment, undefined);
    assert.equal(t.update(ev('generate', 55, 100)).increment, 45);
    assert.equal(t.update(ev('generate', 5, 0)).increment, undefined);
    const multi = new ProgressTracker(false);
    assert.deepEqual(multi.update(ev('train', 1, 2)), { message: 'Training · 1/2 steps' });
  });

  it('sums up a finished round: accuracy before and after, pairs, final metrics', () => {
    const e = (direct: number, refine: number[]) => ({ evaluationId: 1, modelId: 1, n: 8, direct, refineAt: refine, meanLength: [] });
    const report: RunReport = {
      base: { model: 'base', evaluation: e(0.25, [0.3, 0.375]) },
      rounds: [{ round: 1, model: 'round-1', evaluation: e(0.5, [0.5, 0.625]), pairs: { direct: 6, refine: 5, keep: 0 }, trainLoss: 0.41, rewardMargin: 1.2, rewardAccuracy: 0.8, seconds: {} }],
    };
    assert.equal(
      roundSummary(report),
      'Round 1 trained → round-1. Held-out: direct 25.0%, refine@2 37.5% → direct 50.0%, refine@2 62.5%. Pairs: 6 direct, 5 refine. Final loss 0.41 · reward margin 1.2.',
    );
    const withKeep: RunReport = { ...report, rounds: report.rounds.map((r) => ({ ...r, pairs: { direct: 6, refine: 5, keep: 6 } })) };
    assert.match(roundSummary(withKeep), / Pairs: 6 direct, 5 refine, 6 keep\. /);
    assert.equal(roundSummary({ base: report.base, rounds: [] }), 'No round was trained.');
  });
});
