import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { silentLogger } from '../src/log';
import { closeProject, openProject } from '../src/project/project';
import { evaluatePhase } from '../src/round/phases';
import { renderScoreText } from '../src/score/score-text';
import { loopbackLogit, type LoopbackServer, startLoopbackServer } from './support/loopback-openai-server';
import { sumsProject } from './support/sums-project';

/**
 * ARIES inference in `aries eval`: one answer of y0..yK picked per prompt by the rule, by the
 * project's reward model (a real HTTP reward server on 127.0.0.1) and by an oracle, each checked
 * against the stored trajectories and scores of a real evaluation of the bundled model.
 */

interface StoredStep {
  tid: number;
  idx: number;
  text: string;
  prompt_json: string;
  verifier: number;
  rm: number | null;
}

function storedSteps(root: string, evaluationId: number): Map<number, StoredStep[]> {
  const db = new Database(join(root, '.aries/aries.db'), { readonly: true });
  try {
    const rows = db
      .prepare(
        `SELECT t.id AS tid, s.idx, s.text, p.prompt_json, v.value AS verifier, r.value AS rm FROM trajectories t
         JOIN prompts p ON p.id = t.prompt_id JOIN steps s ON s.trajectory_id = t.id
         JOIN scores v ON v.step_id = s.id AND v.scorer = 'verifier'
         LEFT JOIN scores r ON r.step_id = s.id AND r.scorer = 'rm:http'
         WHERE t.evaluation_id = ? ORDER BY t.seq, s.idx`,
      )
      .all(evaluationId) as StoredStep[];
    const out = new Map<number, StoredStep[]>();
    for (const r of rows) out.set(r.tid, [...(out.get(r.tid) ?? []), r]);
    return out;
  } finally {
    db.close();
  }
}

describe('aries eval reports ARIES inference: rule, reward-model and oracle picks of y0..yK', { timeout: 300_000 }, () => {
  let server: LoopbackServer;
  const project = sumsProject({}, { train: 4, heldout: 24 });
  before(async () => {
    server = await startLoopbackServer();
  });
  after(() => {
    server?.close();
    if (project.root) rmSync(project.root, { recursive: true, force: true });
  });

  it('with a reward model configured: every step scored by it, each pick as the stored scores give it', { skip: project.skip }, async () => {
    const file = join(project.root, 'aries.json');
    const config = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    writeFileSync(file, JSON.stringify({
      ...config,
      scoring: { scorers: ['verifier', 'rm:http'] },
      selection: { rmScorer: 'rm:http', maxLengthRatio: 1.2 },
      rewardModel: { httpUrl: server.url, httpModel: 'rm', httpInput: 'text' },
      evaluation: { maxNewTokens: 28, refinements: 2 },
    }, null, 2));
    const p = openProject(project.root, silentLogger);
    let r;
    try {
      r = await evaluatePhase(p, null);
    } finally {
      closeProject(p);
    }
    const trajectories = storedSteps(project.root, r.evaluationId);
    assert.equal(trajectories.size, 24);
    let direct = 0;
    let rule = 0;
    let rm = 0;
    let oracle = 0;
    for (const steps of trajectories.values()) {
      const first = steps[0]!;
      const last = steps.at(-1)!;
      direct += first.verifier;
      oracle += steps.some((s) => s.verifier === 1) ? 1 : 0;
      // The rule at inference: the last refinement, unless the two lengths differ by more than maxLengthRatio.
      const [a, b] = [first.text.trim().length, last.text.trim().length];
      rule += Math.max(a, b) / Math.max(1, Math.min(a, b)) > 1.2 ? first.verifier : last.verifier;
      for (const s of steps) {
        assert.ok(s.rm !== null, `step ${s.idx} of trajectory ${s.tid} was scored by the reward model`);
        const prompt = JSON.parse(s.prompt_json) as string;
        assert.ok(Math.abs(s.rm - loopbackLogit(renderScoreText(prompt, s.text))) < 1e-9, 'the score is what the server gave');
      }
      // The reward model's pick: the highest score, the later step on ties.
      const best = steps.reduce((x, s) => (s.rm! >= x.rm! ? s : x));
      rm += best.verifier;
    }
    const n = trajectories.size;
    assert.equal(r.direct, direct / n);
    assert.equal(r.ruleSelected, rule / n);
    assert.equal(r.rmSelected, rm / n);
    assert.equal(r.rmScorer, 'rm:http');
    assert.equal(r.anyCorrect, oracle / n);
    assert.ok(r.anyCorrect >= Math.max(r.direct, r.ruleSelected, r.rmSelected), 'no pick beats the oracle');
  });

  it('without one: the rule and the oracle only, from the same stored evaluation (no reward server asked)', { skip: project.skip }, async () => {
    const file = join(project.root, 'aries.json');
    const config = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    writeFileSync(file, JSON.stringify({ ...config, scoring: { scorers: ['verifier'] }, selection: { maxLengthRatio: 1.2 } }, null, 2));
    const asked = server.requests.length;
    const p = openProject(project.root, silentLogger);
    try {
      const r = await evaluatePhase(p, null);
      assert.equal(r.rmSelected, undefined);
      assert.equal(r.rmScorer, undefined);
      assert.equal(typeof r.ruleSelected, 'number');
      assert.equal(server.requests.length, asked);
    } finally {
      closeProject(p);
    }
  });
});
