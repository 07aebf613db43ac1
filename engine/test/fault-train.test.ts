import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { silentLogger } from '../src/log';
import { defaultTemplatePath } from '../src/paths';
import { closeProject, openProject } from '../src/project/project';
import { exportPhase, scorePhase, selectPhase } from '../src/round/phases';
import { kill9, killAllCli, runCli, startCli, waitFor } from './support/bundled-cli';
import { fakeTrainer } from './support/fake-trainer';
import { FUZZ_SEED, oddValues, Rand } from './support/fuzz';
import { integrity } from './support/store-digest';
import { type SyntheticProject, syntheticProject } from './support/synthetic-round';
import { PYTHON, tinyModel } from './support/tiny-model';

/**
 * The trainer fails (exits non-zero, reports NaN, is SIGKILLed) or is orphaned by a kill -9 of the
 * engine: the run and round are marked failed with the log kept, the previous model stays current,
 * nothing is left "training", and a retry trains. A stand-in trainer (support/fake-trainer.ts)
 * stages the failures without PyTorch; the last test kills the engine under the real trainer.
 */

interface RunRow {
  id: number;
  status: string;
  error: string | null;
  exit_code: number | null;
  log_path: string;
  pid: number | null;
  output_dir: string;
}

interface State {
  round: string;
  runs: RunRow[];
  current: string;
}

function state(root: string): State {
  const db = new Database(join(root, '.aries/aries.db'), { readonly: true, fileMustExist: true });
  try {
    return {
      round: (db.prepare('SELECT status FROM rounds WHERE idx = 1').get() as { status: string }).status,
      runs: db.prepare('SELECT id, status, error, exit_code, log_path, pid, output_dir FROM training_runs ORDER BY id').all() as RunRow[],
      current: (db.prepare('SELECT name FROM models WHERE is_current = 1').get() as { name: string }).name,
    };
  } finally {
    db.close();
  }
}

/** A project whose round 1 is collected, scored, selected and exported (in this process). */
async function exportedProject(options: { model?: string; config?: Record<string, unknown> } = {}): Promise<SyntheticProject> {
  const proj = syntheticProject({ prompts: 48, ...options });
  const p = openProject(proj.root, silentLogger);
  try {
    await scorePhase(p);
    await selectPhase(p);
    await exportPhase(p);
  } finally {
    closeProject(p);
  }
  return proj;
}

function count(path: string, sql: string): number {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).pluck().get() as number;
  } finally {
    db.close();
  }
}

function setTraining(root: string, training: Record<string, unknown>): void {
  const file = join(root, 'aries.json');
  const config = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  writeFileSync(file, JSON.stringify({ ...config, training }, null, 2));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function gone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!alive(pid)) return true;
    await sleep(50);
  }
  return !alive(pid);
}

function assertFailedAndKept(root: string, runs: number, why: RegExp, checkpointKept = false): void {
  const s = state(root);
  assert.equal(s.round, 'failed');
  assert.equal(s.current, 'base', 'the previous model stays current');
  assert.equal(s.runs.length, runs);
  const last = s.runs.at(-1)!;
  assert.equal(last.status, 'failed');
  assert.match(last.error ?? '', why);
  assert.ok(existsSync(last.log_path), `the log ${last.log_path} is kept`);
  assert.ok(readFileSync(last.log_path, 'utf8').length > 0);
  // A trained checkpoint whose ONNX export failed is kept (the training is done work); the run
  // is failed, so it never becomes current. Otherwise nothing is left that looks complete.
  assert.equal(existsSync(join(last.output_dir, 'config.json')), checkpointKept, checkpointKept ? 'the trained checkpoint is kept' : 'no model is left that looks complete');
  assert.equal(integrity(join(root, '.aries/aries.db')), 'ok');
}

describe('the trainer fails: round failed, log kept, previous model current, retry works', { timeout: 180_000 }, () => {
  let proj: SyntheticProject;
  let command: (mode: string) => string[];
  after(async () => {
    await killAllCli();
    proj?.dispose();
  });

  it('exits non-zero (a crash)', async () => {
    proj = await exportedProject();
    command = fakeTrainer(proj.root);
    setTraining(proj.root, { command: command('fail') });
    const r = runCli(['train', '-p', proj.root]);
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /training of round 1 failed: .*CUDA out of memory \(simulated/);
    assert.match(r.stderr, /see the log .*train\.log; the previous model is still current/);
    assertFailedAndKept(proj.root, 1, /CUDA out of memory/);
    assert.match(readFileSync(state(proj.root).runs[0]!.log_path, 'utf8'), /exit 7/);
  });

  it('reports NaN loss and exits 3', () => {
    setTraining(proj.root, { command: command('nan') });
    const r = runCli(['train', '-p', proj.root]);
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /loss became nan/);
    assertFailedAndKept(proj.root, 2, /loss became nan/);
  });

  it('is SIGKILLed mid-run (e.g. by the OOM killer)', async () => {
    setTraining(proj.root, { command: command('slow') });
    const cli = startCli(['train', '-p', proj.root]);
    const db = join(proj.root, '.aries/aries.db');
    const steps = (): number => count(db, 'SELECT COUNT(*) FROM training_metrics WHERE run_id = (SELECT MAX(id) FROM training_runs)');
    assert.ok(await waitFor(cli, () => steps() >= 3, 30_000, 20), `the trainer should be running: ${cli.stderr()}`);
    // A second engine may not start another run of the same round meanwhile.
    const second = runCli(['train', '-p', proj.root]);
    assert.equal(second.code, 2, second.stderr);
    assert.match(second.stderr, /round 1 is already training \(run 3, process \d+\); wait for it to finish or cancel it/);
    const pid = Number(readFileSync(join(proj.root, 'fake-trainer.pid'), 'utf8'));
    process.kill(pid, 'SIGKILL');
    const { code } = await cli.exited;
    assert.equal(code, 5, cli.stderr());
    assert.match(cli.stderr(), /training of round 1 failed: .*SIGKILL/);
    assertFailedAndKept(proj.root, 3, /SIGKILL/);
  });

  it('writes a checkpoint with no ONNX graph (as trl dpo does) that optimum cannot export', () => {
    // The engine runs optimum's export on a graph-less checkpoint as part of the run; when that
    // fails the run fails the same way a crash does, naming the checkpoint and what it needs.
    setTraining(proj.root, { command: command('nograph') });
    const r = runCli(['train', '-p', proj.root]);
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /could not be exported to ONNX: .*config\.json: model_type 'fake' is not known to transformers/);
    assertFailedAndKept(proj.root, 4, /could not be exported to ONNX/, true);
  });

  it('a retry trains and makes the new model current; the trainer is told the project\'s refinement template', () => {
    setTraining(proj.root, { command: command('ok') });
    // The project names its own template file (same text as the shipped one, so the export still matches).
    copyFileSync(defaultTemplatePath(), join(proj.root, 'my-refinement.json'));
    const file = join(proj.root, 'aries.json');
    writeFileSync(file, JSON.stringify({ ...(JSON.parse(readFileSync(file, 'utf8')) as object), refinementTemplate: 'my-refinement.json' }, null, 2));
    const r = runCli(['train', '-p', proj.root]);
    assert.equal(r.code, 0, r.stderr);
    const s = state(proj.root);
    assert.equal(s.round, 'trained');
    assert.equal(s.current, 'round-1');
    assert.deepEqual(s.runs.map((x) => x.status), ['failed', 'failed', 'failed', 'failed', 'succeeded']);
    const fields = JSON.parse(readFileSync(join(dirname(s.runs.at(-1)!.log_path), 'trainer-config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(fields.refinement_template, join(proj.root, 'my-refinement.json'), 'refine_from_direct rows use the prompts the engine generated with');
  });
});

describe('the export on disk is not the one recorded', { timeout: 60_000 }, () => {
  let proj: SyntheticProject;
  after(() => proj?.dispose());

  it('changed (a re-export killed after its rename, a hand edit) or deleted: train refuses, says to export again, and nothing runs', async () => {
    proj = await exportedProject();
    setTraining(proj.root, { command: fakeTrainer(proj.root)('ok') });
    const data = join(proj.root, '.aries/exports/round-1/data/train.jsonl');
    writeFileSync(data, readFileSync(data, 'utf8').split('\n').slice(1).join('\n'));
    const changed = runCli(['train', '-p', proj.root]);
    assert.equal(changed.code, 2, changed.stderr);
    assert.match(changed.stderr, /train\.jsonl: the file changed after export 1 was recorded \(sha256 [0-9a-f]{12}…, recorded [0-9a-f]{12}…\); run `aries export` to write round 1's dataset again, then train/);
    rmSync(data);
    const deleted = runCli(['train', '-p', proj.root]);
    assert.equal(deleted.code, 2, deleted.stderr);
    assert.match(deleted.stderr, /train\.jsonl: the dataset of export 1 cannot be read \(ENOENT\)/);
    assert.deepEqual(state(proj.root).runs, [], 'no training run was started');
    assert.equal(runCli(['export', '-p', proj.root]).code, 0);
    const retry = runCli(['train', '-p', proj.root]);
    assert.equal(retry.code, 0, retry.stderr);
    assert.equal(state(proj.root).current, 'round-1');
  });
});

describe('the disk is full when the trainer\'s log is written', { timeout: 60_000 }, () => {
  let proj: SyntheticProject;
  after(() => proj?.dispose());

  it('the run fails with that reason, no trainer starts, the previous model stays current, and a retry trains', { skip: !existsSync('/dev/full') && 'no /dev/full' }, async () => {
    proj = await exportedProject();
    setTraining(proj.root, { command: fakeTrainer(proj.root)('ok') });
    // Run 1's log is /dev/full: every write to it fails with ENOSPC, as on a full disk.
    const runDir = join(proj.root, '.aries/runs/run-1');
    mkdirSync(runDir, { recursive: true });
    symlinkSync('/dev/full', join(runDir, 'train.log'));
    const r = runCli(['train', '-p', proj.root]);
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /training of round 1 failed: cannot write .*run-1\/train\.log: ENOSPC/);
    const s = state(proj.root);
    assert.equal(s.round, 'failed');
    assert.equal(s.current, 'base', 'the previous model stays current');
    assert.deepEqual(s.runs.map((x) => x.status), ['failed']);
    assert.equal(existsSync(join(proj.root, 'fake-trainer.pid')), false, 'no trainer was started');
    assert.equal(integrity(join(proj.root, '.aries/aries.db')), 'ok');
    const retry = runCli(['train', '-p', proj.root]);
    assert.equal(retry.code, 0, retry.stderr);
    assert.equal(state(proj.root).current, 'round-1');
  });
});

describe('fuzzed trainer output: the engine keeps what it can use and never crashes', { timeout: 120_000 }, () => {
  let proj: SyntheticProject;
  after(() => proj?.dispose());

  /** Seeded protocol-looking lines with wrong types, and lines that are not JSON at all. */
  function fuzzLines(seed: number, n: number): string {
    const r = new Rand(seed);
    const odd = (): unknown => r.pick(oddValues(r));
    const lines: string[] = [];
    for (let i = 0; i < n; i++) {
      const type = r.pick(['start', 'log', 'log', 'done', 'error', 'other', undefined]);
      const line: Record<string, unknown> = { type };
      for (const k of r.pick([['total_steps'], ['step', 'epoch', 'loss'], ['step', 'rewards/margins', 'learning_rate'], ['output_dir', 'steps', 'train_loss'], ['message', 'exit_code']])) {
        line[k] = r.int(3) === 0 ? r.int(1000) : odd();
      }
      const shape = r.int(10);
      if (shape === 0) lines.push(r.bytes(1 + r.int(300), [0x0a]).toString('latin1'));
      else if (shape === 1) lines.push(JSON.stringify(line).slice(0, -1 - r.int(5)));
      else if (shape === 2) lines.push(`${'{'.repeat(10_000)}`);
      else lines.push(JSON.stringify(line));
    }
    lines.push(JSON.stringify({ type: 'log', step: 7, epoch: 1, loss: 0.25, learning_rate: 0.001 }));
    return `${lines.join('\n')}\n`;
  }

  it('fuzzed stdout lines, then a clean exit: the run succeeds, metrics stored are numbers', async (t) => {
    proj = await exportedProject();
    const command = fakeTrainer(proj.root);
    setTraining(proj.root, { command: command('lines') });
    const N = 400;
    const file = join(proj.root, 'lines.txt');
    writeFileSync(file, fuzzLines(FUZZ_SEED, N));
    const r = runCli(['train', '-p', proj.root], { env: { ...process.env, ARIES_FAKE_LINES: file } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /round 1: trained \d+ steps, loss (\d\.\d{4}|-); new current model/);
    const s = state(proj.root);
    assert.deepEqual([s.round, s.current, s.runs.map((x) => x.status)], ['trained', 'round-1', ['succeeded']]);
    const metrics = count(join(proj.root, '.aries/aries.db'), "SELECT COUNT(*) FROM training_metrics WHERE typeof(step) != 'integer' OR (epoch IS NOT NULL AND typeof(epoch) NOT IN ('integer', 'real'))");
    assert.equal(metrics, 0, 'only well-formed log lines are stored as metrics');
    t.diagnostic(`${N} fuzzed trainer lines (seed ${FUZZ_SEED}): the run succeeded, the engine did not crash, only well-formed metrics were stored`);
  });
});

describe('kill -9 of the engine while its trainer runs', { timeout: 240_000 }, () => {
  const projects: SyntheticProject[] = [];
  after(async () => {
    await killAllCli();
    for (const p of projects) p.dispose();
  });

  it('a trainer that stays silent is stopped with its engine; nothing is left "training"; a retry trains', async () => {
    const proj = await exportedProject();
    projects.push(proj);
    const command = fakeTrainer(proj.root);
    setTraining(proj.root, { command: command('silent') });
    const cli = startCli(['train', '-p', proj.root]);
    const pidFile = join(proj.root, 'fake-trainer.pid');
    assert.ok(await waitFor(cli, () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').length > 0, 30_000, 20), cli.stderr());
    const trainer = Number(readFileSync(pidFile, 'utf8'));
    const runPid = state(proj.root).runs[0]!.pid!;
    await kill9(cli);
    try {
      assert.ok(await gone(trainer, 15_000), 'the orphaned trainer should stop within 15 s of its engine');
      assert.ok(await gone(runPid, 5_000), 'and so should the process the run recorded');
    } finally {
      if (alive(trainer)) process.kill(trainer, 'SIGKILL');
    }
    const stats = runCli(['stats', '--json', '-p', proj.root]);
    assert.equal(stats.code, 0, stats.stderr);
    const s = JSON.parse(stats.stdout) as { rounds: { status: string; error: string | null }[]; trainingRuns: Record<string, number> };
    assert.equal(s.rounds[0]?.status, 'failed', 'the round is not left "training"');
    assert.deepEqual(s.trainingRuns, { failed: 1 });
    assert.equal(state(proj.root).current, 'base');
    setTraining(proj.root, { command: command('ok') });
    const retry = runCli(['train', '-p', proj.root]);
    assert.equal(retry.code, 0, retry.stderr);
    assert.equal(state(proj.root).current, 'round-1');
    assert.equal(state(proj.root).round, 'trained');
  });

  const model = tinyModel({ needsPyTorchWeights: true });
  // One process, and two under `accelerate launch` (torchrun and its workers): the whole group goes.
  for (const launch of [{ launcher: 'python' }, { launcher: 'accelerate', accelerateConfig: 'cpu-ddp-2' }]) {
    it(`the real trainer (launcher ${launch.launcher}), mid-run: it stops, the round is marked failed, a retry trains`, { skip: model.skip }, async () => {
      const proj = await exportedProject({ model: model.dir });
      projects.push(proj);
      setTraining(proj.root, {
        python: PYTHON,
        ...launch,
        dpo: { learning_rate: 0.001, num_train_epochs: 4, per_device_train_batch_size: 4, rpo_alpha: 1.0, precompute_ref_log_probs: true, logging_steps: 1 },
      });
      const cli = startCli(['train', '-p', proj.root]);
      const db = join(proj.root, '.aries/aries.db');
      const steps = (): number => count(db, 'SELECT COUNT(*) FROM training_metrics');
      assert.ok(await waitFor(cli, () => steps() >= 1, 120_000, 20), `training should have started: ${cli.stderr()}`);
      const run = state(proj.root).runs[0]!;
      const trainers = trainerProcesses(join(proj.root, '.aries/runs', `run-${run.id}`));
      assert.ok(trainers.length >= (launch.launcher === 'accelerate' ? 3 : 1), `the trainer processes are running: ${trainers.length}`);
      await kill9(cli);
      try {
        for (const pid of [...trainers, run.pid!]) assert.ok(await gone(pid, 15_000), `trainer ${pid} should stop within 15 s of its engine`);
      } finally {
        for (const pid of trainers) if (alive(pid)) process.kill(pid, 'SIGKILL');
      }
      const afterKill = state(proj.root);
      assert.equal(existsSync(join(afterKill.runs[0]!.output_dir, 'config.json')), false, 'no checkpoint that looks complete');
      const retry = runCli(['train', '-p', proj.root], { timeoutMs: 200_000 });
      assert.equal(retry.code, 0, retry.stderr);
      const s = state(proj.root);
      assert.deepEqual(s.runs.map((r) => r.status), ['failed', 'succeeded']);
      assert.match(s.runs[0]!.error ?? '', /engine stopped/);
      assert.ok(readFileSync(s.runs[0]!.log_path, 'utf8').includes('"type": "log"'), 'the interrupted run keeps its log');
      assert.equal(s.current, 'round-1');
      assert.equal(integrity(db), 'ok');
    });
  }
});

/** Processes whose command line mentions `needle` (Linux /proc; empty elsewhere). */
function trainerProcesses(needle: string): number[] {
  if (!existsSync('/proc/self/cmdline')) return [];
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      if (cmd.includes(needle) && Number(name) !== process.pid) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
