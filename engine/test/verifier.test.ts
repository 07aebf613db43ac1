import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { answersMatch, extractAnswer, referenceAnswer, verify, verifySolution } from '../src/score/verifier';

describe('verifier', () => {
  it('extracts after ####, then \\boxed{}, then the last number', () => {
    assert.deepEqual(extractAnswer('12+30=42 so #### 42'), { answer: '42', method: 'hash' });
    assert.deepEqual(extractAnswer('#### 1,234.5 apples'), { answer: '1,234.5', method: 'hash' });
    assert.deepEqual(extractAnswer('thus \\boxed{\\frac{1}{2}} and \\boxed{7}'), { answer: '7', method: 'boxed' });
    assert.deepEqual(extractAnswer('\\boxed{x^{2}}'), { answer: 'x^{2}', method: 'boxed' });
    assert.deepEqual(extractAnswer('first 3 then -17.'), { answer: '-17', method: 'last-number' });
    assert.deepEqual(extractAnswer('no idea'), { answer: null, method: 'none' });
    assert.deepEqual(extractAnswer('#### Paris'), { answer: 'Paris', method: 'hash' });
  });

  it('compares numbers numerically and text case-insensitively', () => {
    assert.ok(answersMatch('1,000', '1000'));
    assert.ok(answersMatch('+5', '5.0'));
    assert.ok(!answersMatch('5', '6'));
    assert.ok(answersMatch('Paris', 'paris'));
  });

  it('scores 1 / 0, and null without a reference', () => {
    assert.equal(verify('#### 42', '42'), 1);
    assert.equal(verify('#### 41', '42'), 0);
    assert.equal(verify('nothing', '42'), 0);
    assert.equal(verify('#### 42', null), null);
  });

  it('reads the final answer of a worked (GSM8K / MATH style) reference', () => {
    assert.equal(referenceAnswer('3+6=9, 6+1=7 #### 79'), '79');
    assert.equal(referenceAnswer('so x = \\boxed{12}'), '12');
    assert.equal(referenceAnswer(' 79 '), '79');
    assert.equal(verify('2+7=9, 5+2=7 #### 79', '3+6=9, 6+1=7 #### 79'), 1);
    assert.equal(verify('#### 97', '3+6=9, 6+1=7 #### 79'), 0);
  });

  it('verifier:solution: the whole worked solution must match, not only its final answer', () => {
    const reference = '3+6=9, 6+1=7 #### 79';
    assert.equal(verifySolution('3+6=9, 6+1=7 #### 79', reference), 1);
    assert.equal(verifySolution('  3+6=9,  6+1=7\n#### 79 ', reference), 1);
    // right by luck: the digits copied wrong, the final answer right
    assert.equal(verifySolution('2+7=9, 5+2=7 #### 79', reference), 0);
    assert.equal(verifySolution('3+6=9, 6+1=7 #### 78', reference), 0);
    // a bare answer is no worked solution: the check cannot tell
    assert.equal(verifySolution('#### 79', '79'), null);
    assert.equal(verifySolution('#### 79', null), null);
  });
});
