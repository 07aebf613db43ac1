import * as vscode from 'vscode';
import { TryPromptRequest } from '../../engine/src/protocol/engine';
import { MAX_REFINEMENTS, type TryPromptCommand, type TryPromptEvent } from '../../webview/src/try-prompt/protocol';
import type { Engine } from './engine';
import type { Jobs } from './jobs';
import { createWebviewPanel } from './webview-panel';

/**
 * "ARIES: Try a Prompt": one editor-side panel. The page sends a prompt; the host runs the
 * engine's aries/tryPrompt job and forwards its aries/tryPromptDelta notifications as they come.
 */
export class TryPromptPanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private running: vscode.CancellationTokenSource | undefined;
  private initial = '';

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly engine: Engine,
    private readonly jobs: Jobs,
  ) {}

  show(prompt = ''): void {
    this.initial = prompt;
    if (this.panel) {
      this.panel.reveal();
      if (prompt) void this.post({ type: 'init', prompt, refinements: this.defaultRefinements(), model: this.engine.project?.currentModel?.name ?? null });
      return;
    }
    const panel = createWebviewPanel(this.extensionUri, 'try-prompt', 'aries.tryPrompt', 'ARIES: Try a Prompt');
    this.panel = panel;
    panel.iconPath = vscode.Uri.joinPath(this.extensionUri, 'media', 'aries.svg');
    const sub = panel.webview.onDidReceiveMessage((m: TryPromptCommand) => this.receive(m));
    panel.onDidDispose(() => {
      sub.dispose();
      this.running?.cancel();
      this.panel = undefined;
    });
  }

  private defaultRefinements(): number {
    const configured = vscode.workspace.getConfiguration('aries').get<number | null>('refinementSteps');
    return Math.min(MAX_REFINEMENTS, configured ?? this.engine.project?.refinements ?? 3);
  }

  private post(e: TryPromptEvent): Thenable<boolean> {
    return this.panel?.webview.postMessage(e) ?? Promise.resolve(false);
  }

  private receive(m: TryPromptCommand): void {
    if (m.type === 'ready') {
      void this.post({ type: 'init', prompt: this.initial, refinements: this.defaultRefinements(), model: this.engine.project?.currentModel?.name ?? null });
    } else if (m.type === 'stop') {
      this.running?.cancel();
    } else if (m.type === 'ask' && typeof m.prompt === 'string' && m.prompt.trim() && Number.isInteger(m.refinements)) {
      void this.ask(m.prompt, Math.max(0, Math.min(MAX_REFINEMENTS, m.refinements)));
    }
  }

  private async ask(prompt: string, refinements: number): Promise<void> {
    const cts = new vscode.CancellationTokenSource();
    this.running = cts;
    let stopped = 'Stopped.';
    const result = await this.jobs.run(
      'Try a Prompt',
      async (jobId, token) => {
        const link = token.onCancellationRequested(() => cts.cancel());
        const deltas = this.engine.onTryPromptDelta((d) => {
          if (d.jobId !== jobId) return;
          if (d.prompt !== undefined) void this.post({ type: 'step', step: d.step, prompt: d.prompt });
          if (d.delta) void this.post({ type: 'delta', step: d.step, text: d.delta });
          if (d.done) void this.post({ type: 'stepDone', step: d.step });
        });
        void this.post({ type: 'started', prompt, refinements });
        try {
          // A plain string, as prompts are imported: the engine wraps it in the model's chat template when it has one.
          return await this.engine.request(TryPromptRequest.type, { jobId, prompt, refinements, temperature: 0 }, cts.token);
        } catch (err) {
          stopped = cts.token.isCancellationRequested ? 'Stopped; the steps so far are shown.' : `Failed: ${err instanceof Error ? err.message : String(err)}`;
          throw err;
        } finally {
          link.dispose();
          deltas.dispose();
        }
      },
      { location: vscode.ProgressLocation.Window },
    );
    this.running = undefined;
    cts.dispose();
    if (result) void this.post({ type: 'finished', model: result.model, steps: result.steps });
    else void this.post({ type: 'stopped', message: this.jobs.running ? 'Another ARIES job is running.' : stopped });
  }

  dispose(): void {
    this.running?.cancel();
    this.panel?.dispose();
  }
}
