import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { silentLogger } from '../src/log';
import { closeProject, openProject } from '../src/project/project';
import { roundPromptIds } from '../src/round/collect-round';
import type { RunReport } from '../src/round/run-loop';
import { cli, sumsProject } from './support/sums-project';
import { quantizeModel } from './support/tiny-model';

describe('aries run: the whole loop on a real model with the real trainer', () => {
  const project = sumsProject();
  after(() => project.root && rmSync(project.root, { recursive: true, force: true }));

  it('trains a round, registers the model with lineage, and prints the table', { skip: project.skip }, () => {
    const r = cli(['run', project.root, '--rounds', '1']);
    assert.equal(r.code, 0, r.stderr);
    // ARIES inference columns (the rule's pick of y0..yK, the oracle's) sit after refine@k.
    assert.match(r.stdout, /round\s+model\s+n\s+direct\s+refine@1\s+refine@2\s+rule pick\s+oracle\s+pairs d\/r\s+train loss\s+margin\s+time/);
    assert.match(r.stdout, /\n1\s+round-1\s+16(\s+\d+\.\d%){5}\s+\d+\/\d+\s/);
    const db = new Database(join(project.root, '.aries/aries.db'), { readonly: true });
    try {
      const models = db.prepare('SELECT id, name, parent_model_id, trained_in_round_id, is_current, path FROM models ORDER BY id').all() as { id: number; name: string; parent_model_id: number | null; is_current: number; path: string }[];
      assert.deepEqual(models.map((m) => [m.name, m.parent_model_id, m.is_current]), [['base', null, 0], ['round-1', models[0]?.id, 1]]);
      const run = db.prepare('SELECT status, exit_code, log_path, command_json FROM training_runs').get() as { status: string; exit_code: number; log_path: string; command_json: string };
      assert.equal(run.status, 'succeeded');
      assert.match(readFileSync(run.log_path, 'utf8'), /"type": "done"/);
      assert.ok(Array.isArray(JSON.parse(run.command_json)));
      assert.ok((db.prepare('SELECT COUNT(*) AS n FROM training_metrics').get() as { n: number }).n >= 1);
      const exp = db.prepare('SELECT path, sha256 FROM exports').get() as { path: string; sha256: string };
      assert.equal(createHash('sha256').update(readFileSync(exp.path)).digest('hex'), exp.sha256);
      assert.equal((db.prepare('SELECT COUNT(*) AS n FROM trajectories WHERE round_id IS NOT NULL').get() as { n: number }).n, 32);
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    } finally {
      db.close();
    }
    // A trained round can be exported again (curators' later decisions) but not trained again,
    // and neither starts a new round.
    const reexport = cli(['export', '-p', project.root]);
    assert.equal(reexport.code, 0, reexport.stderr);
    assert.match(reexport.stdout, /^round 1: \d+ rows/);
    const retrain = cli(['train', '-p', project.root]);
    assert.equal(retrain.code, 2);
    assert.match(retrain.stderr, /round 1 is already trained; run `aries generate` to start round 2/);
    const rounds = new Database(join(project.root, '.aries/aries.db'), { readonly: true });
    assert.equal((rounds.prepare('SELECT COUNT(*) AS n FROM rounds').get() as { n: number }).n, 1);
    rounds.close();
    // A rerun with the same target does no new work and prints the same table, as JSON too.
    const again = cli(['run', project.root, '--rounds', '1', '--json']);
    assert.equal(again.code, 0, again.stderr);
    const report = JSON.parse(again.stdout) as RunReport;
    assert.equal(report.rounds.length, 1);
    assert.equal(report.rounds[0]?.evaluation?.n, 16);
    assert.equal(report.rounds[0]?.evaluation?.refineAt.length, 2);
  });

  it('marks the round failed and keeps the model when the trainer fails, then a retry works', { skip: project.skip }, () => {
    const config = JSON.parse(readFileSync(join(project.root, 'aries.json'), 'utf8')) as { training: { dpo: Record<string, unknown> } };
    const good = { ...config.training.dpo };
    config.training.dpo = { ...good, learning_rate: 1e30, max_grad_norm: 0, beta: 100, num_train_epochs: 20 };
    writeFileSync(join(project.root, 'aries.json'), JSON.stringify(config));
    const failed = cli(['run', project.root, '--rounds', '2']);
    assert.equal(failed.code, 5, failed.stderr);
    assert.match(failed.stderr, /training of round 2 failed: training failed: loss became/);
    const db = new Database(join(project.root, '.aries/aries.db'), { readonly: true });
    try {
      assert.equal((db.prepare('SELECT status FROM rounds WHERE idx = 2').get() as { status: string }).status, 'failed');
      assert.equal((db.prepare('SELECT name FROM models WHERE is_current = 1').get() as { name: string }).name, 'round-1');
      const run = db.prepare("SELECT log_path FROM training_runs WHERE status = 'failed'").get() as { log_path: string };
      assert.match(readFileSync(run.log_path, 'utf8'), /loss became/);
    } finally {
      db.close();
    }
    config.training.dpo = good;
    writeFileSync(join(project.root, 'aries.json'), JSON.stringify(config));
    const retry = cli(['run', project.root, '--rounds', '2']);
    assert.equal(retry.code, 0, retry.stderr);
    assert.match(retry.stdout, /\n2\s+round-2\s/);
  });

  it('trains on the chosen answers alone (the trainer\'s sft) when training.objective is "sft"', { skip: project.skip }, () => {
    const file = join(project.root, 'aries.json');
    const config = JSON.parse(readFileSync(file, 'utf8')) as { training: Record<string, unknown> };
    writeFileSync(file, JSON.stringify({ ...config, training: { ...config.training, objective: 'nll' } }));
    const bad = cli(['run', project.root, '--rounds', '3']);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /training\.objective must be one of "dpo", "sft", got "nll"/);
    const sft = { learning_rate: 3e-4, num_train_epochs: 1, per_device_train_batch_size: 8, num_threads: 1, logging_steps: 1 };
    writeFileSync(file, JSON.stringify({ ...config, training: { ...config.training, objective: 'sft', sft } }));
    const r = cli(['run', project.root, '--rounds', '3']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\n3\s+round-3\s/);
    const db = new Database(join(project.root, '.aries/aries.db'), { readonly: true });
    try {
      const run = db
        .prepare("SELECT t.id, t.command_json, t.config_json FROM training_runs t JOIN rounds r ON r.id = t.round_id WHERE r.idx = 3 AND t.status = 'succeeded'")
        .get() as { id: number; command_json: string; config_json: string };
      const command = JSON.parse(run.command_json) as string[];
      assert.deepEqual(command.slice(1, 4), ['-m', 'aries_trainer', 'sft']);
      const trainerConfig = JSON.parse(run.config_json) as Record<string, unknown>;
      assert.equal(trainerConfig.learning_rate, 3e-4, 'the sft fields, not the dpo ones, reach the trainer');
      assert.equal(trainerConfig.beta, undefined);
      const metrics = db.prepare('SELECT metrics_json FROM training_metrics WHERE run_id = ?').pluck().all(run.id) as string[];
      assert.ok(metrics.length >= 1);
      assert.ok(metrics.every((m) => 'mean_token_accuracy' in (JSON.parse(m) as object) && !('rewards/margins' in (JSON.parse(m) as object))));
    } finally {
      db.close();
    }
  });
});

describe('aries run with int8 weights (generation.onnxWeights "int8")', () => {
  const project = sumsProject({
    generation: { refinements: 1, batchSize: 8, maxNewTokens: 28, temperature: 1.0, onnxWeights: 'int8' },
    evaluation: { maxNewTokens: 28, refinements: 1 },
  }, { train: 16, heldout: 8 });
  after(() => project.root && rmSync(project.root, { recursive: true, force: true }));

  it('generates and evaluates with the int8 graph, and the trained round gets its own', { skip: project.skip, timeout: 300_000 }, () => {
    const base = join(project.root, 'model');
    const missing = cli(['generate', '-p', project.root]);
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /model_quantized\.onnx: missing; generation\.onnxWeights is "int8".*aries_trainer quantize/);
    quantizeModel(base);
    const r = cli(['run', project.root, '--rounds', '1']);
    assert.equal(r.code, 0, r.stderr);
    const db = new Database(join(project.root, '.aries/aries.db'), { readonly: true });
    try {
      const trained = db.prepare("SELECT path FROM models WHERE name = 'round-1'").get() as { path: string };
      assert.ok(existsSync(join(trained.path, 'onnx/model_quantized.onnx')), 'the trained round was quantized for the next round');
      const evals = db.prepare("SELECT config_json FROM evaluations WHERE status = 'complete'").all() as { config_json: string }[];
      assert.ok(evals.length >= 2 && evals.every((e) => (JSON.parse(e.config_json) as { weights?: string }).weights === 'int8'), 'evaluations say they ran the int8 graph');
    } finally {
      db.close();
    }
  });
});

describe('generation.minPairs: a round short of pairs collects more prompts before it trains', () => {
  const project = sumsProject({
    generation: { refinements: 1, batchSize: 8, maxNewTokens: 28, temperature: 1.0, promptsPerRound: 8, minPairs: 1_000_000 },
    evaluation: { maxNewTokens: 28, refinements: 1, limit: 4 },
  }, { train: 28, heldout: 4 });
  after(() => project.root && rmSync(project.root, { recursive: true, force: true }));

  it('widens the round by promptsPerRound prompts of its seeded order until every train prompt is in, then trains on all of them', { skip: project.skip, timeout: 300_000 }, () => {
    const r = cli(['run', project.root, '--rounds', '1']);
    assert.equal(r.code, 0, r.stderr);
    // 8 prompts, then 8, 8 and the last 4 of the 28: three widenings, each said on stderr.
    const said = [...r.stderr.matchAll(/round 1: (\d+) pairs, fewer than generation\.minPairs 1000000; collecting (\d+) more prompts/g)];
    assert.deepEqual(said.map((m) => Number(m[2])), [8, 8, 4], r.stderr);
    const db = new Database(join(project.root, '.aries/aries.db'), { readonly: true });
    try {
      const trajectories = db.prepare('SELECT prompt_id, seq, status FROM trajectories WHERE round_id IS NOT NULL ORDER BY seq').all() as { prompt_id: string; seq: number; status: string }[];
      assert.equal(trajectories.length, 28);
      assert.deepEqual(trajectories.map((t) => t.seq), Array.from({ length: 28 }, (_, i) => i), 'appended trajectories continue the positions');
      assert.ok(trajectories.every((t) => t.status === 'complete'));
      const pairs = (db.prepare("SELECT COUNT(*) AS n FROM selections WHERE strategy = 'verifier' AND status = 'pair'").get() as { n: number }).n;
      assert.equal(Number(said.at(-1)?.[1]) <= pairs, true, 'the last widening saw no more pairs than the round ends with');
      const counts = JSON.parse((db.prepare('SELECT counts_json FROM exports').get() as { counts_json: string }).counts_json) as { direct: number };
      assert.equal(counts.direct, pairs, 'the export holds the pairs of every prompt the round collected');
      assert.equal((db.prepare('SELECT status FROM rounds WHERE idx = 1').get() as { status: string }).status, 'trained');
    } finally {
      db.close();
    }
    // The first 8 prompts are the sample a round of promptsPerRound 8 takes without minPairs.
    const p = openProject(project.root, silentLogger);
    try {
      const first = (p.db.prepare('SELECT prompt_id FROM trajectories WHERE round_id IS NOT NULL AND seq < 8').pluck().all() as string[]).sort();
      assert.deepEqual(first, [...roundPromptIds(p, 1, 8)].sort());
      const sixteen = new Set(roundPromptIds(p, 1, 16));
      assert.ok(first.every((id) => sixteen.has(id)), 'a larger sample holds the smaller one');
    } finally {
      closeProject(p);
    }
  });

  it('refuses minPairs without promptsPerRound, naming the file and what to set', { skip: project.skip }, () => {
    const file = join(project.root, 'aries.json');
    const config = JSON.parse(readFileSync(file, 'utf8')) as { generation: Record<string, unknown> };
    config.generation.promptsPerRound = 0;
    writeFileSync(file, JSON.stringify(config));
    const r = cli(['stats', '-p', project.root]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /aries\.json: generation\.minPairs is 1000000 but generation\.promptsPerRound is 0 .*; set generation\.promptsPerRound to the prompts a round starts with, or remove minPairs/);
  });
});
