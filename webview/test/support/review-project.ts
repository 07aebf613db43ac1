import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../../engine/src/log';
import { closeProject, openProject } from '../../../engine/src/project/project';
import { importPrompts } from '../../../engine/src/prompt/import';
import { openRound } from '../../../engine/src/round/rounds';
import { scoreSteps } from '../../../engine/src/score/score-steps';
import { VerifierScorer } from '../../../engine/src/score/verifier';
import { selectRound } from '../../../engine/src/selection/select-round';
import { writeTrajectories } from '../../../engine/test/support/temp-project';

/** Hostile text a model (or a person) could produce; none of it may run in a webview. */
export const XSS = [
  '<script>window.__xss = 1</script> #### 7',
  '<img src=x onerror="window.__xss = 2"> #### 7',
  '[click me](javascript:window.__xss=3) #### 7',
  '<div onmouseover="window.__xss = 4">hover</div>\n\n<iframe src="javascript:window.__xss=5"></iframe> #### 7',
  '<svg><script>window.__xss = 6</script></svg> <a href="javascript:alert(1)">x</a> #### 7',
  '![pic](x" onerror="window.__xss=7) <style>body{display:none}</style> <form action="https://example.com"><button>go</button></form> #### 7',
  '```html\n<script>alert(8)</script>\n```\n<details open ontoggle="window.__xss=9">t</details> #### 7',
  '<math><mi xlink:href="javascript:window.__xss=10">m</mi></math> <a href="  JaVaScRiPt:window.__xss=11">y</a> #### 7',
];

/**
 * Text that misleads instead of running: a right-to-left override that makes "8" read where the
 * model wrote otherwise, and a markdown image whose alt text says something (the panel shows both
 * visibly, inert).
 */
export const DECEPTIVE = 'The sum is \u202E8 si rewsna ehT\u202C, see ![a chart of the sum](https://example.com/chart.png) #### 7';

/**
 * A real project folder for the review tests: `n` trajectories of one round, each with a correct
 * and an incorrect step (so every strategy has a pair to accept or swap), the first ones carrying
 * the XSS corpus in prompts and answers; scored and selected. The database is closed on return.
 */
export async function reviewProject(n: number): Promise<{ root: string; dispose: () => void }> {
  const root = mkdtempSync(join(tmpdir(), 'aries-review-'));
  writeFileSync(join(root, 'aries.json'), JSON.stringify({ name: 'review', model: 'model', selection: { strategy: 'verifier', compute: ['rule'] } }));
  const rows = Array.from({ length: n }, (_, i) => ({
    id: `q${String(i + 1).padStart(2, '0')}`,
    prompt: i < 2 ? `Question ${i + 1} ${XSS[i]}: what is 3+4?` : `Question ${i + 1}: what is 3+4?`,
    answer: 7,
  }));
  writeFileSync(join(root, 'prompts.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const p = openProject(root, silentLogger);
  try {
    importPrompts(p.db, join(root, 'prompts.jsonl'));
    const round = openRound(p);
    const answers: Record<string, string[]> = {};
    rows.forEach((r, i) => {
      const hostile = XSS[i % XSS.length] as string;
      answers[r.id] = i < 4 ? ['3+4=8 #### 8', hostile, XSS[(i + 4) % XSS.length] as string] : i === 4 ? ['3+4=8 #### 8', DECEPTIVE] : ['3+4=8 #### 8', `3+4 is **7**.\n\n\`\`\`\n3 + 4 = 7\n\`\`\`\n#### 7`];
    });
    writeTrajectories({ project: p, root, dispose: () => undefined }, round, answers);
    await scoreSteps(p.db, { kind: 'round', id: round.id }, new VerifierScorer());
    selectRound(p.db, round.id, p.config.selection.compute, p.config.selection);
  } finally {
    closeProject(p);
  }
  return { root, dispose: () => rmSync(root, { recursive: true, force: true }) };
}
