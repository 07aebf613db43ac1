import * as vscode from 'vscode';
import type { Engine } from './engine';

/**
 * ARIES: Choose Training Launcher — one process, or `accelerate launch` with one of the accelerate
 * configs shipped with the trainer (the engine lists them) or a file of the user's. The choice is
 * written to the workspace settings aries.trainingLauncher / aries.accelerateConfig, which the
 * engine lays over aries.json's training.launcher / training.accelerateConfig.
 */

const DESCRIPTIONS: Record<string, string> = {
  'cpu-ddp-2': '2 processes on this machine\'s CPUs, DDP over gloo (tested in CI)',
  'gpu-1': 'one GPU',
  'gpu-ddp': 'every GPU of this machine, DDP over NCCL (edit num_processes)',
  'deepspeed-zero3': 'DeepSpeed ZeRO-3 over every GPU (pip install deepspeed)',
  fsdp: 'FSDP full sharding over every GPU',
};

interface LauncherItem extends vscode.QuickPickItem {
  launcher: 'python' | 'accelerate';
  config?: string;
  browse?: boolean;
}

export async function chooseTrainingLauncher(engine: Engine): Promise<string | undefined> {
  await engine.ready();
  const project = engine.project;
  if (!project) throw new Error('no ARIES project is open; open a folder with aries.json or run "ARIES: Initialize Project"');
  const current = project.training;
  const mark = (launcher: string, config?: string): string =>
    current.launcher === launcher && (config === undefined || current.accelerateConfig === config) ? '$(check) ' : '';
  const items: LauncherItem[] = [
    { label: `${mark('python')}One process`, description: 'python -m aries_trainer (CPU, or one GPU)', launcher: 'python' },
    ...project.accelerateConfigs.map((name): LauncherItem => ({
      label: `${mark('accelerate', name)}accelerate: ${name}`,
      description: DESCRIPTIONS[name] ?? `engine/trainer/accelerate/${name}.yaml`,
      launcher: 'accelerate',
      config: name,
    })),
    { label: 'accelerate: a config file of my own…', description: 'e.g. the one `accelerate config` wrote', launcher: 'accelerate', browse: true },
  ];
  const pick = await vscode.window.showQuickPick(items, {
    title: 'ARIES: Choose Training Launcher',
    placeHolder: current.command ? 'Note: training.command / aries.trainerCommand is set and replaces the built-in trainer' : 'How the built-in trainer starts for each round',
  });
  if (!pick) return undefined;
  let config = pick.config;
  if (pick.browse) {
    const files = await vscode.window.showOpenDialog({ canSelectMany: false, filters: { 'accelerate config': ['yaml', 'yml', 'json'] }, defaultUri: vscode.Uri.file(project.root), openLabel: 'Use this config' });
    if (!files?.[0]) return undefined;
    config = files[0].fsPath;
  }
  const settings = vscode.workspace.getConfiguration('aries');
  await settings.update('trainingLauncher', pick.launcher, vscode.ConfigurationTarget.Workspace);
  await settings.update('accelerateConfig', pick.launcher === 'accelerate' ? config ?? '' : '', vscode.ConfigurationTarget.Workspace);
  return pick.launcher === 'python' ? 'one process' : `accelerate launch with ${config}`;
}
