import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EngineError } from '../src/errors';
import { parseProjectConfig } from '../src/project/config';
import { selectByRule, selectByScore, selectByVerifier, type StepView } from '../src/selection/strategies';

const step = (id: number, text: string, scores: Record<string, number | null> = {}): StepView => ({ id, idx: id, text, scores });

describe('selection strategies', () => {
  it('rm: highest over lowest, later step wins ties for chosen, skips small margins', () => {
    const steps = [step(0, 'a', { rm: 0.1 }), step(1, 'b', { rm: 0.9 }), step(2, 'c', { rm: 0.9 }), step(3, 'd', { rm: 0.1 })];
    const o = selectByScore(steps, 'rm', 0);
    assert.equal(o.status, 'pair');
    if (o.status === 'pair') {
      assert.deepEqual([o.chosen, o.rejected], [2, 0]);
      assert.ok(Math.abs((o.margin ?? 0) - 0.8) < 1e-9);
    }
    assert.equal(selectByScore(steps, 'rm', 0.8).status, 'skip');
    assert.match(selectByScore([step(0, 'a', { rm: 1 })], 'rm', 0).reason, /fewer than two/);
    assert.match(selectByScore([step(0, 'a', { rm: 1 }), step(1, 'b', { rm: 1 })], 'rm', 0).reason, /tie/);
  });

  it('rule: last refinement over first answer, with its guards', () => {
    const cfg = { maxLengthRatio: 2, ruleGuard: 'none' as const, verifierScorer: 'verifier' as const };
    const o = selectByRule([step(0, '#### 41'), step(1, '#### 42'), step(2, '#### 43')], cfg);
    assert.equal(o.status, 'pair');
    if (o.status === 'pair') assert.deepEqual([o.chosen, o.rejected], [2, 0]);
    assert.match(selectByRule([step(0, '#### 41')], cfg).reason, /no refinement/);
    assert.match(selectByRule([step(0, '#### 41 '), step(1, '####  41')], cfg).reason, /repeats the first answer/);
    assert.match(selectByRule([step(0, '#### 4'), step(1, 'a much longer answer #### 4')], cfg).reason, /length ratio .* > 2/);
    const contradicted = [step(0, '#### 42', { verifier: 1 }), step(1, '#### 43', { verifier: 0 })];
    assert.equal(selectByRule(contradicted, cfg).status, 'pair');
    assert.match(selectByRule(contradicted, { ...cfg, ruleGuard: 'verifier' }).reason, /verifier says the refinement is wrong/);
    // the guard reads the configured verifier scorer
    const bySolution = [step(0, '#### 42', { verifier: 1, 'verifier:solution': 0 }), step(1, '#### 43', { verifier: 0, 'verifier:solution': 1 })];
    assert.equal(selectByRule(bySolution, { ...cfg, ruleGuard: 'verifier' }).status, 'skip');
    assert.equal(selectByRule(bySolution, { ...cfg, ruleGuard: 'verifier', verifierScorer: 'verifier:solution' }).status, 'pair');
  });

  it('verifier: latest correct over earliest incorrect', () => {
    const o = selectByVerifier([step(0, 'x', { verifier: 0 }), step(1, 'y', { verifier: 1 }), step(2, 'z', { verifier: 0 }), step(3, 'w', { verifier: 1 })]);
    assert.equal(o.status, 'pair');
    if (o.status === 'pair') assert.deepEqual([o.chosen, o.rejected], [3, 0]);
    assert.match(selectByVerifier([step(0, 'x', { verifier: 1 }), step(1, 'y', { verifier: 1 })]).reason, /every step is correct/);
    assert.match(selectByVerifier([step(0, 'x', { verifier: 0 })]).reason, /no step is correct/);
    assert.match(selectByVerifier([step(0, 'x', { verifier: null })]).reason, /no "verifier" scores/);
  });

  it('verifier with verifier:solution: a right final answer with wrong work is not chosen', () => {
    const lucky = { verifier: 1, 'verifier:solution': 0 };
    const steps = [step(0, 'a', { verifier: 0, 'verifier:solution': 0 }), step(1, 'b', { verifier: 1, 'verifier:solution': 1 }), step(2, 'c', lucky)];
    const byAnswer = selectByVerifier(steps);
    const bySolution = selectByVerifier(steps, 'verifier:solution');
    assert.ok(byAnswer.status === 'pair' && bySolution.status === 'pair');
    if (byAnswer.status === 'pair') assert.equal(byAnswer.chosen, 2);
    if (bySolution.status === 'pair') assert.deepEqual([bySolution.chosen, bySolution.rejected], [1, 0]);
    assert.match(selectByVerifier([step(0, 'x', { verifier: 1 })], 'verifier:solution').reason, /no "verifier:solution" scores .*worked solution/);
  });

  it('aries.json: selection.verifierScorer must be a scorer the project computes', () => {
    const base = { model: 'm', selection: { verifierScorer: 'verifier:solution' } };
    assert.throws(() => parseProjectConfig('/p/aries.json', base), (e: unknown) => e instanceof EngineError && e.code === 'BAD_INPUT' && /\/p\/aries\.json: selection\.verifierScorer is "verifier:solution" but scoring\.scorers does not compute it/.test(e.message));
    const ok = parseProjectConfig('/p/aries.json', { ...base, scoring: { scorers: ['verifier', 'verifier:solution'] } });
    assert.equal(ok.selection.verifierScorer, 'verifier:solution');
    assert.equal(parseProjectConfig('/p/aries.json', { model: 'm' }).selection.verifierScorer, 'verifier');
  });
});
