import { userInfo } from 'node:os';
import * as vscode from 'vscode';
import { ReportRequest } from '../../../engine/src/protocol/engine';
import type { Engine } from '../engine';
import { createWebviewPanel } from '../webview-panel';
import { DashboardHost, type EngineRequester, ReviewHost } from './review-host';

/** The curator's name on decisions: the aries.curatorName setting, else the OS user name. */
export function curatorName(): string {
  const configured = vscode.workspace.getConfiguration('aries').get<string>('curatorName')?.trim();
  if (configured) return configured.slice(0, 100);
  try {
    return userInfo().username || 'curator';
  } catch {
    return 'curator';
  }
}

function requester(engine: Engine): EngineRequester {
  return { sendRequest: (type, params) => engine.request(type, params) };
}

/**
 * "ARIES: Open Review" and "ARIES: Open Dashboard": one editor panel each. The panels' host code
 * (review-host.ts) validates every webview message before it reaches the engine; the engine saves
 * each decision before answering, so closing the panel or VS Code loses nothing.
 */
export class ReviewPanels implements vscode.Disposable {
  private review: { panel: vscode.WebviewPanel; host: ReviewHost } | undefined;
  private dashboard: { panel: vscode.WebviewPanel; host: DashboardHost } | undefined;
  private readonly subscriptions: vscode.Disposable[];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly engine: Engine,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.subscriptions = [
      engine.onStoreChanged((what) => {
        if (what.includes('trajectories') || what.includes('rounds')) this.review?.host.notify({ kind: 'changed' });
        this.dashboard?.host.notify({ kind: 'changed' });
      }),
    ];
  }

  async openReview(trajectoryId?: number): Promise<void> {
    if (this.review) {
      this.review.panel.reveal();
      if (trajectoryId !== undefined) await this.initReview(trajectoryId);
      return;
    }
    const panel = createWebviewPanel(this.extensionUri, 'review', 'aries.review', 'ARIES: Review', vscode.ViewColumn.Active);
    panel.iconPath = vscode.Uri.joinPath(this.extensionUri, 'media', 'aries.svg');
    const host = new ReviewHost(requester(this.engine), curatorName, (m) => void panel.webview.postMessage(m), (m) => this.log.warn(`review: ${m}`));
    this.review = { panel, host };
    const sub = panel.webview.onDidReceiveMessage((m: unknown) => {
      if (typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'ready') void this.initReview(trajectoryId);
      else void host.handle(m);
    });
    panel.onDidDispose(() => {
      sub.dispose();
      this.review = undefined;
    });
  }

  private async initReview(focusTrajectory?: number): Promise<void> {
    const review = this.review;
    if (!review) return;
    try {
      const report = await this.engine.request(ReportRequest.type, {});
      const rounds = Array.from(new Set([...report.rounds.map((r) => r.round), this.engine.project?.openRound?.idx].filter((r): r is number => typeof r === 'number'))).sort((a, b) => a - b);
      review.host.notify({ kind: 'init', curator: curatorName(), strategy: this.engine.project?.strategy ?? 'verifier', rounds, focusTrajectory });
    } catch (err) {
      this.log.error(`review: ${(err as Error).message}`);
      void vscode.window.showErrorMessage(`ARIES: cannot open the review: ${(err as Error).message}`);
    }
  }

  openDashboard(): void {
    if (this.dashboard) {
      this.dashboard.panel.reveal();
      return;
    }
    const panel = createWebviewPanel(this.extensionUri, 'dashboard', 'aries.dashboard', 'ARIES: Dashboard', vscode.ViewColumn.Active);
    panel.iconPath = vscode.Uri.joinPath(this.extensionUri, 'media', 'aries.svg');
    const host = new DashboardHost(requester(this.engine), (m) => void panel.webview.postMessage(m), (m) => this.log.warn(`dashboard: ${m}`));
    this.dashboard = { panel, host };
    const sub = panel.webview.onDidReceiveMessage((m: unknown) => {
      if (typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'ready') host.notify({ kind: 'init' });
      else void host.handle(m);
    });
    panel.onDidDispose(() => {
      sub.dispose();
      this.dashboard = undefined;
    });
  }

  dispose(): void {
    this.review?.panel.dispose();
    this.dashboard?.panel.dispose();
    for (const s of this.subscriptions) s.dispose();
  }
}
