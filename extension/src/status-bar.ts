import * as vscode from 'vscode';
import { StatsRequest } from '../../engine/src/protocol/engine';
import type { Engine } from './engine';
import type { Jobs } from './jobs';

/** The status bar item: the engine's state, or the running job and its latest progress. */
export function createStatusBar(engine: Engine, jobs: Jobs): vscode.Disposable {
  const item = vscode.window.createStatusBarItem('aries.status', vscode.StatusBarAlignment.Left, 10);
  item.name = 'ARIES';
  let latest: { round: number; status: string } | undefined;
  const render = (): void => {
    const job = jobs.running;
    item.backgroundColor = undefined;
    if (job) {
      item.text = `$(sync~spin) ARIES: ${job.title}`;
      item.tooltip = `${job.title}: ${job.message}\nCancel it from its progress notification.`;
      item.command = 'aries.showLog';
    } else if (engine.state === 'failed') {
      item.text = '$(error) ARIES: engine stopped';
      item.tooltip = `${engine.problem ?? 'The engine is not running.'}\nClick to restart it.`;
      item.command = 'aries.restartEngine';
      item.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
    } else if (engine.state === 'starting') {
      item.text = '$(loading~spin) ARIES: starting';
      item.tooltip = 'Starting the ARIES engine';
      item.command = 'aries.showLog';
    } else if (engine.state === 'running') {
      const p = engine.project;
      item.text = `$(beaker) ARIES${latest ? `: round ${latest.round} ${latest.status}` : ''}`;
      item.tooltip = p ? `${p.name} · model ${p.currentModel?.name ?? '–'} · ${p.database}` : 'The ARIES engine is running (no project open)';
      item.command = 'aries.showLog';
    } else {
      item.text = '$(beaker) ARIES';
      item.tooltip = 'The ARIES engine starts when a command or view needs it';
      item.command = 'aries.showLog';
    }
    item.show();
  };
  // The newest round's status, refreshed when the engine reports that rounds changed.
  const refresh = (): void => {
    if (!engine.projectOpen) {
      latest = undefined;
      render();
      return;
    }
    engine.request(StatsRequest.type, {}).then(
      (s) => {
        latest = s.rounds.at(-1);
        render();
      },
      () => undefined,
    );
  };
  render();
  return vscode.Disposable.from(
    item,
    engine.onDidChangeState(render),
    engine.onProjectOpened(refresh),
    engine.onStoreChanged((what) => what.includes('rounds') && refresh()),
    jobs.onDidChange(render),
  );
}
