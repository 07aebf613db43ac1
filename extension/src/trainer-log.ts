import { closeSync, openSync, readSync, statSync } from 'node:fs';
import * as vscode from 'vscode';
import { TrainingRunsRequest } from '../../engine/src/protocol/engine';
import type { Engine } from './engine';

/**
 * The "ARIES Trainer" output channel: while a job trains, the running run's train.log (what the
 * trainer printed: its JSON progress lines and its stderr) is streamed into the channel as it
 * grows. The engine writes the log; the extension only reads it, from the same machine.
 */
export class TrainerLog implements vscode.Disposable {
  readonly channel = vscode.window.createOutputChannel('ARIES Trainer');
  private follow: { path: string; offset: number; timer: NodeJS.Timeout } | undefined;

  constructor(
    private readonly engine: Engine,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  /** Streams the log of the training run this job starts; dispose when the job ends (reads the rest first). */
  watch(jobId: string): vscode.Disposable {
    let looking = false;
    const sub = this.engine.onProgress((p) => {
      if (p.jobId !== jobId || p.phase !== 'train' || this.follow || looking) return;
      looking = true;
      this.engine
        .request(TrainingRunsRequest.type, {})
        .then((runs) => {
          const run = runs.find((r) => r.status === 'running');
          if (run) this.start(run.logPath, `training run ${run.id} (round ${run.round}, from ${run.baseModel})`);
        })
        .catch((e: unknown) => this.log.warn(`trainer log: ${String(e)}`))
        .finally(() => (looking = false));
    });
    return new vscode.Disposable(() => {
      sub.dispose();
      this.stop();
    });
  }

  private start(path: string, title: string): void {
    this.stop();
    this.channel.appendLine(`── ${title} · ${path}`);
    this.follow = { path, offset: 0, timer: setInterval(() => this.read(), 500) };
    this.read();
  }

  private read(): void {
    const f = this.follow;
    if (!f) return;
    let size: number;
    try {
      size = statSync(f.path).size;
    } catch {
      return; // not created yet
    }
    if (size <= f.offset) return;
    const fd = openSync(f.path, 'r');
    try {
      const buf = Buffer.alloc(Math.min(size - f.offset, 4 * 1024 * 1024));
      const n = readSync(fd, buf, 0, buf.length, f.offset);
      // Only whole lines: keep a partial last line for the next read.
      const text = buf.subarray(0, n).toString('utf8');
      const end = text.lastIndexOf('\n') + 1;
      if (end === 0) return;
      this.channel.append(text.slice(0, end));
      f.offset += Buffer.byteLength(text.slice(0, end));
    } finally {
      closeSync(fd);
    }
  }

  private stop(): void {
    if (!this.follow) return;
    this.read();
    clearInterval(this.follow.timer);
    this.follow = undefined;
  }

  dispose(): void {
    this.stop();
    this.channel.dispose();
  }
}
