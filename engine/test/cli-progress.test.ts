import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { progressBar } from '../src/cli/terminal';

/** A stderr stand-in that records what is written and can claim to be a terminal. */
function fakeStream(isTTY: boolean): NodeJS.WriteStream & { text: () => string } {
  const chunks: string[] = [];
  const stream = { isTTY, write: (chunk: string) => (chunks.push(chunk), true), text: () => chunks.join('') };
  return stream as unknown as NodeJS.WriteStream & { text: () => string };
}

function drive(bar: ReturnType<typeof progressBar>): void {
  bar({ phase: 'generate', done: 0, total: 4 });
  bar({ phase: 'generate', done: 4, total: 4 });
  bar({ phase: 'score', done: 4, total: 4, message: 'verifier' });
  bar.finish();
}

describe('CLI progress', () => {
  it('draws a bar on a terminal', () => {
    const s = fakeStream(true);
    drive(progressBar(s, 'auto'));
    assert.match(s.text(), /\r\x1b\[2Kgenerate\s+█+ 4\/4/);
  });

  it('--json ("lines"): one summary line per phase and no bar, even on a terminal', () => {
    const s = fakeStream(true);
    drive(progressBar(s, 'lines'));
    assert.doesNotMatch(s.text(), /\x1b|█/);
    assert.deepEqual(s.text().split('\n').filter(Boolean).map((l) => l.replace(/ in [\d.]+s.*/, '')), ['generate: 4/4', 'score (verifier): 4/4']);
  });

  it('"off" writes nothing', () => {
    const s = fakeStream(false);
    drive(progressBar(s, 'off'));
    assert.equal(s.text(), '');
  });
});
