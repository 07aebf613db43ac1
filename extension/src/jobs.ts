import * as vscode from 'vscode';
import { ResponseError } from 'vscode-languageclient/node';
import { ErrorCodes } from '../../engine/src/protocol/engine';
import { type Engine, EngineUnavailable } from './engine';
import { ProgressTracker } from './progress-text';

export interface RunningJob {
  id: string;
  title: string;
  /** The latest progress line ("Generating · 120/400 steps"). */
  message: string;
}

/**
 * Long engine jobs (generate, score, select, export, train, evaluate, a full round, Try a Prompt):
 * one at a time, each under a cancellable progress notification fed by aries/progress. Cancel
 * fires the request's CancellationToken, which vscode-languageclient sends as $/cancelRequest;
 * the engine stops after the batch in flight and keeps what it committed.
 */
export class Jobs implements vscode.Disposable {
  private current: RunningJob | undefined;
  private nextId = 1;
  private readonly emitter = new vscode.EventEmitter<RunningJob | undefined>();
  readonly onDidChange = this.emitter.event;

  constructor(
    private readonly engine: Engine,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  get running(): RunningJob | undefined {
    return this.current;
  }

  /**
   * Runs `work` with a fresh job id. Resolves to its result, or undefined when it was cancelled or
   * failed (the user has been told). `bar`: a one-phase job, so the bar shows its fraction.
   */
  async run<R>(title: string, work: (jobId: string, token: vscode.CancellationToken) => Promise<R>, options: { bar?: boolean; location?: vscode.ProgressLocation } = {}): Promise<R | undefined> {
    if (this.current) {
      void vscode.window.showWarningMessage(`ARIES: "${this.current.title}" is running. Wait for it, or cancel it from its progress notification.`);
      return undefined;
    }
    const job: RunningJob = { id: `job-${Date.now().toString(36)}-${this.nextId++}`, title, message: 'starting…' };
    this.current = job;
    this.emitter.fire(job);
    this.log.info(`${title}: started (${job.id})`);
    try {
      return await vscode.window.withProgress({ location: options.location ?? vscode.ProgressLocation.Notification, title: `ARIES: ${title}`, cancellable: true }, async (progress, token) => {
        const tracker = new ProgressTracker(options.bar ?? false);
        const sub = this.engine.onProgress((p) => {
          if (p.jobId !== job.id) return;
          const update = tracker.update(p);
          progress.report(update);
          job.message = update.message;
          this.emitter.fire(job);
        });
        const cancelSub = token.onCancellationRequested(() => this.log.info(`${title}: cancel requested (${job.id})`));
        try {
          const result = await work(job.id, token);
          this.log.info(`${title}: done (${job.id})`);
          return result;
        } catch (err) {
          reportFailure(title, err, this.log, this.engine);
          return undefined;
        } finally {
          sub.dispose();
          cancelSub.dispose();
        }
      });
    } finally {
      this.current = undefined;
      this.emitter.fire(undefined);
    }
  }

  dispose(): void {
    this.emitter.dispose();
  }
}

/** Tells the user why a command did not work, and what to do. */
export function reportFailure(title: string, err: unknown, log: vscode.LogOutputChannel, engine: Engine): void {
  if (err instanceof EngineUnavailable) {
    log.error(`${title}: ${err.message}`);
    void vscode.window.showErrorMessage(`ARIES: ${err.problem} ${err.fix}`, 'Open Settings', 'Show Log').then((pick) => {
      if (pick === 'Open Settings') void vscode.commands.executeCommand('workbench.action.openSettings', 'aries.nodePath');
      else if (pick === 'Show Log') log.show(true);
    });
    return;
  }
  if (err instanceof ResponseError) {
    log.warn(`${title}: engine error ${err.code}: ${err.message}`);
    if (err.code === ErrorCodes.Cancelled) {
      void vscode.window.showInformationMessage(`ARIES: ${title} cancelled. Completed work is kept; run it again to continue.`);
      return;
    }
    if (err.code === ErrorCodes.NoProject) {
      void vscode.window.showErrorMessage(`ARIES: ${err.message}`, 'Initialize Project').then((pick) => pick && vscode.commands.executeCommand('aries.initProject'));
      return;
    }
    if (err.code === ErrorCodes.Busy) {
      void vscode.window.showWarningMessage(`ARIES: ${err.message}`);
      return;
    }
    // JSON-RPC's own codes (-32099..-32096): the connection went away under the request (crash, restart, window closing).
    if (err.code >= -32099 && err.code <= -32096) {
      void vscode.window.showWarningMessage(`ARIES: ${title} stopped because the engine stopped. Completed work is kept; run it again to continue.`);
      return;
    }
  } else if (engine.state !== 'running' && engine.state !== 'starting') {
    log.warn(`${title}: ${String(err)}`);
    void vscode.window.showWarningMessage(`ARIES: ${title} stopped because the engine stopped. Completed work is kept; run it again to continue.`);
    return;
  }
  const message = err instanceof Error ? err.message : String(err);
  log.error(`${title} failed: ${message}`);
  void vscode.window.showErrorMessage(`ARIES: ${title} failed: ${message}`, 'Show Log').then((pick) => pick && log.show(true));
}
