import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { after, before, describe, it } from 'node:test';
import { CancellationTokenSource, createMessageConnection, type MessageConnection, ResponseError, StreamMessageReader, StreamMessageWriter } from 'vscode-languageserver-protocol/node';
import {
  EditStepRequest, ErrorCodes, GenerateRequest, type JobProgress, OpenProjectRequest, ProgressNotification, ReportRequest, RunRoundsRequest, StateChangedNotification, StatsRequest,
  TryPromptDeltaNotification, TryPromptRequest,
} from '../src/protocol/engine';
import { CLI, sumsProject } from './support/sums-project';
import { REPO_ROOT } from './support/tiny-model';

describe('the engine as a JSON-RPC server (what the extension drives)', () => {
  const project = sumsProject({ scoring: { scorers: ['verifier', 'verifier:solution'] } }, { train: 24, heldout: 8 });
  let connection: MessageConnection;
  let child: ReturnType<typeof spawn>;
  const progress: JobProgress[] = [];
  const changed: string[] = [];
  let stderr = '';

  before(async () => {
    if (project.skip) return;
    child = spawn(process.execPath, ['--import', 'tsx', CLI, 'serve'], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    connection = createMessageConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
    connection.onNotification(ProgressNotification.type, (p) => {
      progress.push(p);
    });
    connection.onNotification(StateChangedNotification.type, (s) => {
      changed.push(...s.what);
    });
    connection.onNotification('window/logMessage', () => undefined);
    connection.listen();
    await connection.sendRequest('initialize', { processId: process.pid, rootUri: null, capabilities: {} });
    await connection.sendNotification('initialized', {});
  });

  after(async () => {
    if (project.skip) return;
    await connection.sendRequest('shutdown').catch(() => undefined);
    await connection.sendNotification('exit').catch(() => undefined);
    connection.dispose();
    child.kill();
    rmSync(project.root, { recursive: true, force: true });
  });

  it('refuses work before a project is open', { skip: project.skip }, async () => {
    await assert.rejects(connection.sendRequest(StatsRequest.type, {}), (e: ResponseError<void>) => e.code === ErrorCodes.NoProject);
  });

  it('opens a project and runs a whole round with progress notifications', { skip: project.skip, timeout: 300_000 }, async () => {
    const summary = await connection.sendRequest(OpenProjectRequest.type, { root: project.root });
    assert.equal(summary.currentModel?.name, 'base');
    const report = await connection.sendRequest(RunRoundsRequest.type, { jobId: 'job-1', rounds: 1 });
    assert.equal(report.rounds.length, 1, stderr);
    assert.equal(report.rounds[0]?.evaluation?.n, 8);
    const phases = new Set(progress.filter((p) => p.jobId === 'job-1').map((p) => p.phase));
    for (const phase of ['generate', 'score', 'select', 'train']) assert.ok(phases.has(phase), `no ${phase} progress: ${[...phases].join(',')}`);
    assert.ok(progress.some((p) => p.phase === 'train' && typeof p.metrics?.loss === 'number'));
    assert.ok(changed.includes('models'));
    const again = await connection.sendRequest(ReportRequest.type, {});
    assert.deepEqual(again.rounds.map((r) => r.model), ['round-1']);
  });

  it('an edited answer is scored at once by the reference checks aries.json names', { skip: project.skip }, async () => {
    const db = new Database(join(project.root, '.aries/aries.db'), { readonly: true });
    const step = db
      .prepare("SELECT s.id, p.reference FROM steps s JOIN trajectories t ON t.id = s.trajectory_id JOIN prompts p ON p.id = t.prompt_id WHERE t.round_id IS NOT NULL AND s.origin = 'model' ORDER BY s.id LIMIT 1")
      .get() as { id: number; reference: string };
    db.close();
    const edit = async (text: string) => {
      const detail = await connection.sendRequest(EditStepRequest.type, { stepId: step.id, text, curator: 'ana' });
      const edited = detail.steps.find((s) => s.origin === 'curator' && s.text === text);
      assert.ok(edited, `the edited step is in the detail: ${JSON.stringify(detail.steps.map((s) => s.text))}`);
      return edited.scores;
    };
    const right = await edit(`worked out: #### ${step.reference}`);
    assert.equal(right.verifier?.value, 1);
    // the sums project's references are bare numbers: the solution check is computed and cannot tell
    assert.ok('verifier:solution' in right);
    assert.equal(right['verifier:solution']?.value, null);
    const wrong = await edit(`#### ${Number(step.reference) + 1}`);
    assert.equal(wrong.verifier?.value, 0);
  });

  it('cancels a long job with $/cancelRequest and keeps completed work', { skip: project.skip, timeout: 120_000 }, async () => {
    const source = new CancellationTokenSource();
    const first = new Promise<void>((resolve) => {
      const sub = connection.onNotification(ProgressNotification.type, (p) => {
        if (p.jobId === 'job-2' && p.phase === 'generate' && p.done > 0) {
          sub.dispose();
          resolve();
        }
      });
    });
    const pending = connection.sendRequest(GenerateRequest.type, { jobId: 'job-2' }, source.token);
    await first;
    source.cancel();
    await assert.rejects(pending, (e: ResponseError<void>) => e.code === ErrorCodes.Cancelled);
    const stats = await connection.sendRequest(StatsRequest.type, { check: true });
    assert.equal(stats.integrity, 'ok');
    const round2 = stats.rounds.find((r) => r.round === 2);
    assert.ok(round2 && round2.steps > 0 && round2.steps < 24 * 3, JSON.stringify(round2));
  });

  it('streams Try a Prompt: the answer and each refinement', { skip: project.skip, timeout: 60_000 }, async () => {
    const deltas = new Map<number, string>();
    const prompts = new Map<number, string>();
    const sub = connection.onNotification(TryPromptDeltaNotification.type, (d) => {
      if (d.prompt !== undefined) prompts.set(d.step, d.prompt);
      deltas.set(d.step, (deltas.get(d.step) ?? '') + d.delta);
    });
    const result = await connection.sendRequest(TryPromptRequest.type, { jobId: 'job-3', prompt: '3+4=', refinements: 2 });
    sub.dispose();
    assert.equal(result.steps.length, 3);
    assert.deepEqual([...deltas.values()], result.steps);
    assert.match(prompts.get(1) ?? '', /Previous answer:/);
  });
});
