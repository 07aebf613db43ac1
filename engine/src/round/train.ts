import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { EngineError } from '../errors';
import { exportRound } from '../export/dataset';
import { writeAll } from '../files';
import { getModel, registerModel } from '../model/registry';
import { trainerPackageDir } from '../paths';
import type { JobControl } from '../progress';
import type { Project } from '../project/project';
import { parseHfTrainerOutput, parseTrainerLine, type TrainerLogLine } from '../protocol/trainer';
import { type Db, now } from '../store/db';
import { MODEL_FILES, QUANTIZED_FILES } from '../generation/onnx/model-folder';
import { findTrainerPython } from './python';
import { builtinCommand, expandCommand, trainerConfig, trainerToolCommand } from './trainer-command';
import { getRound, setRoundStatus } from './rounds';
import { underWatchdog } from './trainer-watchdog';

export interface TrainResult {
  runId: number;
  modelId: number;
  outputDir: string;
  steps: number;
  trainLoss: number | null;
  lastMetrics: TrainerLogLine | null;
}

/**
 * Marks runs whose process is gone (the engine was killed while training; the trainer's
 * watchdog then stopped the trainer) as failed; their logs stay. The round is marked failed only
 * while it still waits on training: a retry may have trained it since, or be training it now.
 */
export function reapStaleRuns(db: Db): number {
  const running = db.prepare("SELECT id, pid, round_id FROM training_runs WHERE status = 'running'").all() as { id: number; pid: number | null; round_id: number }[];
  let reaped = 0;
  for (const r of running) {
    if (r.pid !== null && isAlive(r.pid)) continue;
    db.transaction(() => {
      const t = now();
      db.prepare("UPDATE training_runs SET status = 'failed', error = ?, finished_at = ? WHERE id = ? AND status = 'running'").run('the engine stopped while this run was going; see its log', t, r.id);
      const other = db.prepare("SELECT 1 FROM training_runs WHERE round_id = ? AND status = 'running' AND id != ?").get(r.round_id, r.id);
      if (!other) db.prepare("UPDATE rounds SET status = 'failed', error = ?, updated_at = ? WHERE id = ? AND status = 'training'").run('training was interrupted', t, r.round_id);
    })();
    reaped++;
  }
  return reaped;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // it exists, under another user
  }
}

/**
 * Trains the round's policy on its latest export (exporting first if there is none): starts the
 * trainer as a child process with an argument list, streams its JSON progress into the store and
 * its output into the run's log, and on success registers the new model as current. On a non-zero
 * exit the run and round are marked failed, the log is kept and the previous model stays current.
 */
export async function trainRound(p: Project, roundId: number, job: JobControl = {}): Promise<TrainResult> {
  const round = getRound(p.db, roundId);
  reapStaleRuns(p.db);
  const live = p.db.prepare("SELECT id, pid FROM training_runs WHERE round_id = ? AND status = 'running'").get(roundId) as { id: number; pid: number | null } | undefined;
  if (live) throw new EngineError('BAD_INPUT', `round ${round.idx} is already training (run ${live.id}, process ${live.pid ?? 'starting'})`, 'wait for it to finish or cancel it, then retry');
  const base = getModel(p.db, round.policy_model_id);
  let exp = p.db.prepare('SELECT id, path, sha256 FROM exports WHERE round_id = ? ORDER BY id DESC LIMIT 1').get(roundId) as { id: number; path: string; sha256: string } | undefined;
  if (!exp) {
    const r = exportRound(p, roundId);
    exp = { id: r.exportId, path: r.path, sha256: r.sha256 };
  } else checkExportFile(exp, round.idx);
  const custom = p.config.training.command;
  const template = custom ?? builtinCommand(p.root, p.config);
  const python = template.some((a) => a.includes('{python}')) ? findTrainerPython(p.config.training.python) : '';
  const started = now();
  const insert = p.db
    .prepare(
      `INSERT INTO training_runs (round_id, export_id, base_model_id, status, command_json, config_json, output_dir, log_path, started_at)
       VALUES (?, ?, ?, 'running', '[]', '{}', '', '', ?)`,
    )
    .run(roundId, exp.id, base.id, started);
  const runId = Number(insert.lastInsertRowid);
  const runDir = join(p.stateDir, 'runs', `run-${runId}`);
  const outputDir = join(p.stateDir, 'models', `round-${round.idx}-run-${runId}`);
  const logPath = join(runDir, 'train.log');
  const configPath = join(runDir, 'trainer-config.json');
  mkdirSync(runDir, { recursive: true });
  const fields = trainerConfig(p.config, { model: base.path, dataset: exp.path, outputDir, refinementTemplate: p.template.path });
  writeFileSync(configPath, `${JSON.stringify(fields, null, 2)}\n`);
  const values = { python, trainer: trainerPackageDir(), model: base.path, dataset: exp.path, dataset_dir: dirname(exp.path), output_dir: outputDir, config: configPath };
  const command = expandCommand(template, values);
  p.db.prepare('UPDATE training_runs SET command_json = ?, config_json = ?, output_dir = ?, log_path = ? WHERE id = ?').run(JSON.stringify(command), JSON.stringify(fields), outputDir, logPath, runId);
  setRoundStatus(p.db, roundId, 'training');

  let outcome = await runTrainer(p, runId, command, logPath, job);
  // What the next round's generation needs and a training command may not have written, made now
  // as part of this run: the ONNX graph (`trl dpo` and other Hugging Face trainers write none),
  // and its int8 quantization when generation.onnxWeights is "int8".
  const g = p.config.generation;
  const followUps = [
    { tool: 'export', needed: () => existsSync(join(outputDir, 'config.json')) && !MODEL_FILES.some((f) => existsSync(join(outputDir, f))), failed: 'could not be exported to ONNX' },
    { tool: 'quantize', needed: () => g.onnxWeights === 'int8' && !QUANTIZED_FILES.some((f) => existsSync(join(outputDir, f))), failed: 'could not be quantized to int8' },
  ] as const;
  for (const step of followUps) {
    if (outcome.exitCode !== 0 || g.backend !== 'onnx' || !step.needed()) continue;
    const trained = outcome;
    outcome = await runTrainer(p, runId, trainerToolCommand(python || findTrainerPython(p.config.training.python), step.tool, outputDir), logPath, job);
    if (outcome.exitCode !== 0) outcome.error = `the trained checkpoint ${step.failed}: ${outcome.error ?? `exit ${outcome.exitCode}`}`;
    else outcome = { ...trained, exitCode: 0 };
  }
  const finished = now();
  if (outcome.exitCode !== 0 || !existsSync(join(outputDir, 'config.json'))) {
    const why = outcome.cancelled
      ? 'cancelled'
      : (outcome.error ?? (outcome.exitCode === 0 ? `the trainer exited 0 but wrote no model to ${outputDir}` : `the trainer exited with ${outcome.exitCode ?? outcome.signal}`));
    p.db.prepare('UPDATE training_runs SET status = ?, exit_code = ?, error = ?, finished_at = ? WHERE id = ?').run(outcome.cancelled ? 'cancelled' : 'failed', outcome.exitCode, why, finished, runId);
    setRoundStatus(p.db, roundId, 'failed', why);
    if (outcome.cancelled) throw new EngineError('CANCELLED', `training of round ${round.idx} was cancelled; the previous model is still current`, 'start the round again to retry');
    throw new EngineError('TRAINER', `training of round ${round.idx} failed: ${why}`, `see the log ${logPath}; the previous model is still current and a rerun retries`);
  }
  const model = p.db.transaction(() => {
    const m = registerModel(p.db, { name: `round-${round.idx}`, backend: base.backend, path: outputDir, parentModelId: base.id, trainedInRoundId: roundId, trainingRunId: runId }, true);
    p.db.prepare("UPDATE training_runs SET status = 'succeeded', exit_code = 0, output_model_id = ?, finished_at = ? WHERE id = ?").run(m.id, finished, runId);
    setRoundStatus(p.db, roundId, 'trained');
    return m;
  })();
  return { runId, modelId: model.id, outputDir, steps: outcome.steps, trainLoss: outcome.trainLoss, lastMetrics: outcome.lastLog };
}

/**
 * The run records which export it trained on, so the file must still be that export: a re-export
 * killed after its rename (before its record), a deleted or hand-edited file would otherwise be
 * trained on under another export's name and checksum.
 */
function checkExportFile(exp: { id: number; path: string; sha256: string }, roundIdx: number): void {
  const again = `run \`aries export\` to write round ${roundIdx}'s dataset again, then train`;
  let actual: string;
  try {
    actual = createHash('sha256').update(readFileSync(exp.path)).digest('hex');
  } catch (err) {
    throw new EngineError('BAD_INPUT', `${exp.path}: the dataset of export ${exp.id} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, again);
  }
  if (actual !== exp.sha256) throw new EngineError('BAD_INPUT', `${exp.path}: the file changed after export ${exp.id} was recorded (sha256 ${actual.slice(0, 12)}…, recorded ${exp.sha256.slice(0, 12)}…)`, again);
}

interface TrainerOutcome {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  cancelled: boolean;
  error: string | null;
  steps: number;
  trainLoss: number | null;
  lastLog: TrainerLogLine | null;
}

function runTrainer(p: Project, runId: number, command: string[], logPath: string, job: JobControl): Promise<TrainerOutcome> {
  const exe = command[0];
  if (!exe) throw new EngineError('BAD_INPUT', 'training.command is empty', 'remove it from aries.json to use the built-in trainer');
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONPATH: [trainerPackageDir(), process.env.PYTHONPATH].filter(Boolean).join(delimiter), PYTHONUNBUFFERED: '1' };
  // API keys are the engine's (generation and reward-model servers), not the trainer's: a trainer
  // that prints its environment (crash reports, `accelerate env`) would put them in train.log.
  for (const name of new Set([p.config.generation.openai.apiKeyEnv, p.config.rewardModel.apiKeyEnv])) delete env[name];
  // Written synchronously, line by line, before the line's metrics reach the store: a kill -9 of
  // the engine leaves a log that holds at least everything the database recorded.
  const outcome: TrainerOutcome = { exitCode: null, signal: null, cancelled: false, error: null, steps: 0, trainLoss: null, lastLog: null };
  const logFd = openSync(logPath, 'a');
  let logFailure: string | null = null;
  let logClosed = false;
  const writeLog = (line: string): boolean => {
    if (logFailure !== null || logClosed) return false;
    try {
      writeAll(logFd, `${line}\n`, logPath);
      return true;
    } catch (err) {
      logFailure = `cannot write ${logPath}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
      return false;
    }
  };
  if (!writeLog(`# ${now()} ${JSON.stringify(command)}`)) {
    closeSync(logFd);
    return Promise.resolve({ ...outcome, error: logFailure });
  }
  // stdin is the watchdog's lifeline: it closes when this process dies, and the trainer is stopped.
  const watched = underWatchdog(command);
  const child = spawn(watched.exe, watched.args, { cwd: p.root, env, stdio: ['pipe', 'pipe', 'pipe'] });
  const stopChild = (): void => {
    child.kill('SIGTERM');
    setTimeout(() => child.exitCode === null && child.kill('SIGKILL'), 5000).unref();
  };
  // A log that cannot be written (disk full) stops the run with that reason, instead of throwing
  // out of a stream handler and taking the engine down.
  const logLine = (line: string): boolean => {
    if (writeLog(line)) return true;
    if (!logClosed) stopChild();
    return false;
  };
  p.db.prepare('UPDATE training_runs SET pid = ? WHERE id = ?').run(child.pid ?? null, runId);
  const insertMetric = p.db.prepare('INSERT OR REPLACE INTO training_metrics (run_id, step, epoch, metrics_json) VALUES (?, ?, ?, ?)');
  let total = 0;
  const stderrTail: string[] = [];
  let barStep = 0; // a Hugging Face Trainer's progress bar (configured commands such as `trl dpo`)
  const onLog = (msg: TrainerLogLine): void => {
    insertMetric.run(runId, msg.step, msg.epoch, JSON.stringify(msg));
    outcome.lastLog = msg;
    outcome.steps = msg.step;
    const metrics: Record<string, number> = {};
    for (const k of ['loss', 'rewards/margins', 'rewards/accuracies'] as const) if (typeof msg[k] === 'number') metrics[k] = msg[k] as number;
    job.progress?.({ phase: 'train', done: msg.step, total, metrics });
  };
  const onHfOutput = (line: string): void => {
    const out = parseHfTrainerOutput(line);
    if (out?.kind === 'progress') {
      total = out.total;
      barStep = out.done;
      job.progress?.({ phase: 'train', done: out.done, total });
    } else if (out?.kind === 'metrics') {
      const { train_loss: trainLoss, epoch, loss, learning_rate: lr, ...rest } = out.values;
      if (loss === undefined) {
        if (trainLoss !== undefined) outcome.trainLoss = trainLoss; // the Trainer's closing summary
        return;
      }
      // The dict has no step: take the bar's (it is redrawn before each log) or the next one.
      onLog({ ...rest, type: 'log', step: Math.max(barStep, outcome.steps + 1), epoch: epoch ?? 0, loss, learning_rate: lr ?? 0 });
    }
  };
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (!logLine(line)) return; // nothing reaches the store that the log does not hold
    const msg = parseTrainerLine(line);
    if (!msg) return onHfOutput(line);
    if (msg.type === 'start') total = msg.total_steps;
    else if (msg.type === 'log') onLog(msg);
    else if (msg.type === 'done') outcome.trainLoss = msg.train_loss;
    else if (msg.type === 'error') outcome.error = msg.message;
  });
  createInterface({ input: child.stderr }).on('line', (line) => {
    if (!logLine(line)) return;
    onHfOutput(line);
    stderrTail.push(line);
    if (stderrTail.length > 20) stderrTail.shift();
  });
  const onAbort = (): void => {
    outcome.cancelled = true;
    stopChild();
  };
  job.signal?.addEventListener('abort', onAbort, { once: true });
  return new Promise((resolveRun) => {
    child.on('error', (err) => {
      outcome.error = `cannot start ${exe}: ${err.message}`;
    });
    child.on('close', (code, signal) => {
      job.signal?.removeEventListener('abort', onAbort);
      outcome.exitCode = code;
      outcome.signal = signal;
      if (code !== 0 && !outcome.error) outcome.error = stderrTail.slice(-3).join(' | ') || `exit ${code ?? signal}`;
      writeLog(`# ${now()} exit ${code ?? signal}`);
      if (logFailure !== null) outcome.error = logFailure;
      logClosed = true; // lines after this point (none are expected) are not written to a closed fd
      closeSync(logFd);
      resolveRun(outcome);
    });
  });
}
