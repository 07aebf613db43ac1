import * as vscode from 'vscode';
import { ApiKeys } from './api-key';
import { registerCommands } from './commands';
import { Engine } from './engine';
import { Jobs, reportFailure } from './jobs';
import { settingsChangeEffect } from './settings';
import { createStatusBar } from './status-bar';
import { TrainerLog } from './trainer-log';
import { TryPromptPanel } from './try-prompt-panel';
import { ReviewPanels } from './review/review-panels';
import { registerViews } from './views/trees';
import { hasProject, projectFolder } from './workspace-project';

let engine: Engine | undefined;

/**
 * The composition root. Everything created here lives as long as the extension (disposed through
 * context.subscriptions); what lives as long as one engine connection belongs to Engine. Nothing
 * starts the engine here: the first command or view that needs it does.
 */
export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('ARIES', { log: true });
  const engineOutput = vscode.window.createOutputChannel('ARIES Engine', { log: true });
  const apiKeys = new ApiKeys(context.secrets);
  engine = new Engine(context.extensionPath, log, engineOutput, () => apiKeys.forEngine(), projectFolder);
  const jobs = new Jobs(engine, log);
  const trainer = new TrainerLog(engine, log);
  const tryPrompt = new TryPromptPanel(context.extensionUri, engine, jobs);
  const e = engine;
  log.info(`ARIES Studio ${String(context.extension.packageJSON.version)} activated (VS Code ${vscode.version}, extension host Node ${process.version}${process.versions.electron ? `, Electron ${process.versions.electron}` : ''})`);

  const setContext = (): void => {
    void vscode.commands.executeCommand('setContext', 'aries.projectOpen', hasProject());
    void vscode.commands.executeCommand('setContext', 'aries.engineState', e.state);
  };
  setContext();

  const panels = new ReviewPanels(context.extensionUri, engine, log);
  const openReview = (trajectoryId?: number): void => {
    panels.openReview(trajectoryId).catch((err: unknown) => reportFailure('Open Review', err, log, e));
  };

  context.subscriptions.push(
    log,
    engineOutput,
    engine,
    jobs,
    trainer,
    tryPrompt,
    panels,
    vscode.commands.registerCommand('aries.openDashboard', () => panels.openDashboard()),
    createStatusBar(engine, jobs),
    ...registerViews(engine, log, hasProject),
    ...registerCommands({ engine, jobs, log, trainer, apiKeys, tryPrompt, projectFolder, openReview }),
    engine.onDidChangeState(setContext),
    engine.onProjectOpened(setContext),
    vscode.workspace.onDidChangeConfiguration((ev) => {
      const effect = settingsChangeEffect((s) => ev.affectsConfiguration(s));
      if (effect === 'none' || e.state !== 'running') return;
      if (jobs.running) {
        void vscode.window.showInformationMessage(`ARIES: the new settings apply after "${jobs.running.title}" finishes (run "ARIES: Restart Engine" then).`);
        return;
      }
      log.info(`settings changed: ${effect === 'restart' ? 'restarting the engine' : 'reopening the project'}`);
      const root = projectFolder();
      const apply = effect === 'restart' ? e.restart() : root && hasProject() ? e.openProject(root).then(() => undefined) : Promise.resolve();
      apply.catch((err: unknown) => reportFailure('Apply settings', err, log, e));
    }),
    vscode.workspace.onDidGrantWorkspaceTrust(() => {
      // The engine gets the API key (and may run the trainer) only in a trusted workspace.
      if (e.state === 'running' && !jobs.running) void e.restart().catch((err: unknown) => reportFailure('Restart Engine', err, log, e));
    }),
  );

  // aries.json edited (or created by the CLI): reopen so the engine uses it; views follow.
  const watcher = vscode.workspace.createFileSystemWatcher('**/aries.json');
  const projectFileChanged = (uri: vscode.Uri): void => {
    setContext();
    const root = projectFolder();
    if (!root || !uri.fsPath.startsWith(root) || e.state !== 'running' || jobs.running || !hasProject()) return;
    log.info(`${uri.fsPath} changed: reopening the project`);
    e.openProject(root).catch((err: unknown) => reportFailure('Reopen project', err, log, e));
  };
  context.subscriptions.push(watcher, watcher.onDidChange(projectFileChanged), watcher.onDidCreate(projectFileChanged), watcher.onDidDelete(() => setContext()));
}

export async function deactivate(): Promise<void> {
  await engine?.stop();
  engine = undefined;
}
