import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import {
  EvaluateRequest, ExportRequest, GenerateRequest, ImportPromptsRequest, InitProjectRequest, ReportRequest, RunRoundsRequest, ScoreRequest, SelectRequest, TrainRequest,
} from '../../engine/src/protocol/engine';
import type { ApiKeys } from './api-key';
import type { Engine } from './engine';
import { type Jobs, reportFailure } from './jobs';
import { chooseTrainingLauncher } from './launcher-command';
import { fmt, pct, roundSummary, rowKinds, rowTotal } from './progress-text';
import type { TrainerLog } from './trainer-log';
import { requireTrust } from './trust';
import type { TryPromptPanel } from './try-prompt-panel';

/** What the commands work with; built once in extension.ts. */
export interface CommandContext {
  engine: Engine;
  jobs: Jobs;
  log: vscode.LogOutputChannel;
  trainer: TrainerLog;
  apiKeys: ApiKeys;
  tryPrompt: TryPromptPanel;
  projectFolder: () => string | undefined;
  /** Opens the review panel (at a trajectory), or says why it cannot. */
  openReview: (trajectoryId?: number) => void;
}

/** Shows a result line with follow-up buttons; a picked button runs its command. */
function done(message: string, ...next: [label: string, command: string][]): void {
  void vscode.window.showInformationMessage(`ARIES: ${message}`, ...next.map(([label]) => label)).then((pick) => {
    const command = next.find(([label]) => label === pick)?.[1];
    if (command) void vscode.commands.executeCommand(command);
  });
}

export function registerCommands(c: CommandContext): vscode.Disposable[] {
  const { engine, jobs, log } = c;
  const guarded = (title: string, fn: () => Promise<void>) => async () => {
    try {
      await fn();
    } catch (err) {
      reportFailure(title, err, log, engine);
    }
  };
  const register = (id: string, title: string, fn: () => Promise<void>): vscode.Disposable => vscode.commands.registerCommand(id, guarded(title, fn));

  return [
    register('aries.initProject', 'Initialize Project', () => initProject(c)),
    register('aries.importPrompts', 'Import Prompts', () => importPrompts(c)),

    register('aries.generate', 'Generate Trajectories', async () => {
      const r = await jobs.run('Generate Trajectories', (jobId, token) => engine.request(GenerateRequest.type, { jobId }, token), { bar: true });
      if (r) done(`Round ${r.round}: ${r.trajectories} trajectories, ${r.stepsWritten} new steps${r.stoppedRepeated ? ` (${r.stoppedRepeated} stopped early: a refinement repeated the answer)` : ''}.`, ['Score', 'aries.score']);
    }),
    register('aries.score', 'Score', async () => {
      const r = await jobs.run('Score', (jobId, token) => engine.request(ScoreRequest.type, { jobId }, token), { bar: true });
      if (r) done(`Round ${r.round} scored: ${Object.entries(r.scored).map(([s, n]) => `${s} ${n} steps`).join(', ') || 'nothing new to score'}.`, ['Select Pairs', 'aries.select']);
    }),
    register('aries.select', 'Select Pairs', async () => {
      const r = await jobs.run('Select Pairs', (jobId, token) => engine.request(SelectRequest.type, { jobId }, token), { bar: true });
      if (r) {
        const by = Object.entries(r.byStrategy).map(([s, v]) => `${s} ${v.pairs} pairs / ${v.skipped} skipped`).join('; ');
        done(`Round ${r.round}: ${by}.`, ['Open Review', 'aries.openReview'], ['Export Dataset', 'aries.export']);
      }
    }),
    register('aries.export', 'Export Dataset', async () => {
      const r = await jobs.run('Export Dataset', (jobId, token) => engine.request(ExportRequest.type, { jobId }, token));
      if (!r) return;
      const pick = await vscode.window.showInformationMessage(
        `ARIES: round ${r.round} exported: ${rowTotal(r.counts)} rows (${rowKinds(r.counts)}; ${r.counts.overridden} from curators) → ${r.path}`,
        'Open',
        'Start Training Round',
      );
      if (pick === 'Open') await vscode.window.showTextDocument(vscode.Uri.file(r.path), { preview: true });
      else if (pick) void vscode.commands.executeCommand('aries.train');
    }),
    register('aries.train', 'Start Training Round', async () => {
      if (!requireTrust('Training')) return;
      const r = await jobs.run('Start Training Round', async (jobId, token) => {
        const follow = c.trainer.watch(jobId);
        try {
          return await engine.request(TrainRequest.type, { jobId }, token);
        } finally {
          follow.dispose();
        }
      }, { bar: true });
      if (r) done(`Round ${r.round} trained in ${r.steps} steps (final loss ${fmt(r.trainLoss)}); the new model is current.`, ['Evaluate', 'aries.evaluate']);
    }),
    register('aries.chooseTrainingLauncher', 'Choose Training Launcher', async () => {
      if (!requireTrust('Choosing how the trainer starts')) return;
      const chosen = await chooseTrainingLauncher(engine);
      if (chosen) done(`the next training round starts with ${chosen} (workspace settings aries.trainingLauncher, aries.accelerateConfig).`, ['Start Training Round', 'aries.train']);
    }),
    register('aries.evaluate', 'Evaluate', async () => {
      const r = await jobs.run('Evaluate', (jobId, token) => engine.request(EvaluateRequest.type, { jobId }, token));
      if (r) done(`held-out accuracy (${r.n} prompts): first answer ${pct(r.direct)}${r.refineAt.map((a, k) => `, refine@${k + 1} ${pct(a)}`).join('')}.`);
    }),
    register('aries.runRound', 'Run Full Round', async () => {
      if (!requireTrust('A full round')) return;
      const before = await engine.request(ReportRequest.type, {});
      const target = before.rounds.length + 1;
      const report = await jobs.run(`Run Full Round (round ${target})`, async (jobId, token) => {
        const follow = c.trainer.watch(jobId);
        try {
          return await engine.request(RunRoundsRequest.type, { jobId, rounds: target }, token);
        } finally {
          follow.dispose();
        }
      });
      if (report) done(roundSummary(report), ['Show Rounds', 'aries.rounds.focus'], ['Try a Prompt', 'aries.tryPrompt']);
    }),

    register('aries.tryPrompt', 'Try a Prompt', async () => {
      const editor = vscode.window.activeTextEditor;
      const selected = editor && !editor.selection.isEmpty ? editor.document.getText(editor.selection) : '';
      c.tryPrompt.show(selected.slice(0, 10_000));
    }),
    vscode.commands.registerCommand('aries.openReview', (trajectoryId?: unknown) => c.openReview(typeof trajectoryId === 'number' ? trajectoryId : undefined)),

    register('aries.restartEngine', 'Restart Engine', async () => {
      if (jobs.running) {
        const pick = await vscode.window.showWarningMessage(`Restarting the engine stops "${jobs.running.title}" (completed work is kept).`, { modal: true }, 'Restart');
        if (pick !== 'Restart') return;
      }
      await engine.restart();
      done('the engine restarted.');
    }),
    vscode.commands.registerCommand('aries.showLog', (which?: unknown) => {
      if (which === 'engine') engine.engineOutput.show(true);
      else if (which === 'trainer') c.trainer.channel.show(true);
      else log.show(true);
    }),
    register('aries.setApiKey', 'Set API Key', async () => {
      if (!(await c.apiKeys.set())) return;
      // The key reaches the engine in its environment, so a running engine restarts to get it.
      if (engine.state === 'running' && !jobs.running) await engine.restart();
      done(vscode.workspace.isTrusted ? 'API key stored in secret storage.' : 'API key stored; the engine gets it once you trust this workspace.');
    }),
    register('aries.clearApiKey', 'Clear API Key', async () => {
      await c.apiKeys.clear();
      if (engine.state === 'running' && !jobs.running) await engine.restart();
      done('API key removed.');
    }),
    vscode.commands.registerCommand('aries.openFile', async (path?: unknown) => {
      if (typeof path !== 'string') return;
      if (!existsSync(path)) {
        void vscode.window.showWarningMessage(`ARIES: ${path} does not exist (moved or deleted).`);
        return;
      }
      await vscode.window.showTextDocument(vscode.Uri.file(path), { preview: true });
    }),
  ];
}

async function initProject(c: CommandContext): Promise<void> {
  let root = c.projectFolder();
  let openAfter = false;
  if (!root) {
    const picked = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: 'Create ARIES project here', title: 'ARIES: Initialize Project' });
    if (!picked?.[0]) return;
    root = picked[0].fsPath;
    openAfter = true;
  }
  const choice = await vscode.window.showQuickPick(
    [
      { label: '$(beaker) Arithmetic demo', description: 'bundled tiny model, sum prompts with answers, aries.json', from: 'arithmetic' as const },
      { label: '$(new-file) Empty project', description: 'bundled model and aries.json; import your prompts next', from: 'empty' as const },
    ],
    { title: `ARIES: Initialize Project in ${root}`, placeHolder: 'Start from…' },
  );
  if (!choice) return;
  let force = false;
  if (existsSync(join(root, 'aries.json'))) {
    const pick = await vscode.window.showWarningMessage(`${join(root, 'aries.json')} already exists. Overwrite it? (The database in .aries/ is kept.)`, { modal: true }, 'Overwrite');
    if (pick !== 'Overwrite') return;
    force = true;
  }
  const result = await c.engine.request(InitProjectRequest.type, { root, from: choice.from, force });
  c.log.info(`initialized ${result.root}: ${result.files.join(', ')}`);
  if (openAfter) {
    await vscode.commands.executeCommand('vscode.openFolder', vscode.Uri.file(root));
    return;
  }
  await c.engine.openProject(root);
  await vscode.commands.executeCommand('setContext', 'aries.projectOpen', true);
  await vscode.window.showTextDocument(vscode.Uri.file(join(root, 'aries.json')), { preview: true, preserveFocus: true });
  done(
    choice.from === 'arithmetic' ? `project initialized in ${root} from the arithmetic demo. Next: run a full round.` : `empty project initialized in ${root}. Next: import prompts.`,
    choice.from === 'arithmetic' ? ['Run Full Round', 'aries.runRound'] : ['Import Prompts', 'aries.importPrompts'],
  );
}

async function importPrompts(c: CommandContext): Promise<void> {
  const root = c.projectFolder();
  const files = await vscode.window.showOpenDialog({
    canSelectMany: true,
    filters: { 'Prompts (JSONL, JSON)': ['jsonl', 'json'] },
    defaultUri: root ? vscode.Uri.file(root) : undefined,
    openLabel: 'Import',
    title: 'ARIES: Import Prompts — {"prompt": …, "answer": …} or {"messages": […]} per line',
  });
  if (!files?.length) return;
  const pick = await vscode.window.showQuickPick(
    [
      { label: 'train', description: 'prompts the rounds collect trajectories for' },
      { label: 'heldout', description: 'prompts evaluation measures accuracy on (never trained on)' },
      { label: 'Other split…', description: 'a name of your own' },
    ],
    { title: 'ARIES: Import Prompts into which split?' },
  );
  if (!pick) return;
  const split =
    pick.label === 'Other split…'
      ? await vscode.window.showInputBox({ title: 'Split name', validateInput: (v) => (/^[A-Za-z0-9_-]+$/.test(v) ? undefined : 'Letters, digits, _ and - only') })
      : pick.label;
  if (!split) return;
  const results = await c.engine.request(ImportPromptsRequest.type, { files: files.map((f) => f.fsPath), split });
  done(results.map((r) => `${r.file}: ${r.added} new, ${r.unchanged} already there (${r.split})`).join('; '), ['Generate Trajectories', 'aries.generate']);
}
