import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { createMessageConnection, ResponseError, StreamMessageReader, StreamMessageWriter } from 'vscode-languageserver-protocol/node';
import { ErrorCodes, GenerateRequest, OpenProjectRequest, ProgressNotification } from '../src/protocol/engine';
import { CLI, sumsProject } from './support/sums-project';
import { REPO_ROOT } from './support/tiny-model';

/** `aries serve` with a connection to it; `started` resolves once generation has produced something. */
function startEngine() {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'serve'], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  const connection = createMessageConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
  connection.onNotification('window/logMessage', () => undefined);
  const started = new Promise<void>((resolve) =>
    connection.onNotification(ProgressNotification.type, (p) => {
      if (p.phase === 'generate' && p.done > 0) resolve();
    }),
  );
  connection.listen();
  return { child, connection, started };
}

describe('engine shutdown (the extension stops or restarts the engine)', () => {
  const project = sumsProject({}, { train: 64, heldout: 4 });
  after(() => {
    if (!project.skip) rmSync(project.root, { recursive: true, force: true });
  });

  it('cancels the running job, answers shutdown and exits', { skip: project.skip, timeout: 120_000 }, async () => {
    const { child, connection, started } = startEngine();
    try {
      await connection.sendRequest('initialize', { processId: process.pid, rootUri: null, capabilities: {} });
      await connection.sendRequest(OpenProjectRequest.type, { root: project.root });
      const job = connection.sendRequest(GenerateRequest.type, { jobId: 'g' });
      const outcome = job.then(() => 'finished', (e: ResponseError<void>) => e.code);
      await started;
      const t0 = Date.now();
      await connection.sendRequest('shutdown');
      assert.equal(await outcome, ErrorCodes.Cancelled, 'the job stops before shutdown answers');
      assert.ok(Date.now() - t0 < 8000, `shutdown took ${Date.now() - t0} ms`);
      const exited = once(child, 'exit');
      await connection.sendNotification('exit');
      const [code] = await exited;
      assert.equal(code, 0);
    } finally {
      connection.dispose();
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  for (const how of ['SIGTERM', 'stdin closed'] as const) {
    it(`exits on its own when ${how === 'SIGTERM' ? 'sent SIGTERM' : 'its client goes away (stdin closed)'}, mid-job, keeping the store closed cleanly`, { skip: project.skip, timeout: 120_000 }, async () => {
      const { child, connection, started } = startEngine();
      const exited = once(child, 'exit');
      try {
        await connection.sendRequest('initialize', { processId: process.pid, rootUri: null, capabilities: {} });
        await connection.sendRequest(OpenProjectRequest.type, { root: project.root });
        void connection.sendRequest(GenerateRequest.type, { jobId: `g-${how}` }).catch(() => undefined);
        await started;
        const t0 = Date.now();
        if (how === 'SIGTERM') child.kill('SIGTERM');
        else child.stdin.end();
        const [code, signal] = await exited;
        assert.equal(code, 0, `exit code ${code}, signal ${signal}`);
        assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms to exit`);
      } finally {
        connection.dispose();
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    });
  }
});
