import * as vscode from 'vscode';
import { ExportsRequest, ReportRequest, StatsRequest, TrainingRunsRequest, TrajectoryGroupsRequest } from '../../../engine/src/protocol/engine';
import type { Engine, StoreChange } from '../engine';
import { exportsTree, roundsTree, trainingRunsTree, trajectoriesTree, type TreeNode } from './tree-nodes';

/**
 * A view of the ARIES activity-bar container: asks the engine when shown (starting it the first
 * time), refreshes when the engine says the store changed. With no project (or an engine that
 * cannot start) it is empty, so the view's welcome content says what to do.
 */
class EngineTree implements vscode.TreeDataProvider<TreeNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<TreeNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly subs: vscode.Disposable[];
  view: vscode.TreeView<TreeNode> | undefined;

  constructor(
    private readonly engine: Engine,
    private readonly log: vscode.LogOutputChannel,
    private readonly hasProject: () => boolean,
    private readonly load: (tree: EngineTree) => Promise<TreeNode[]>,
    refreshOn: readonly StoreChange[],
  ) {
    this.subs = [
      engine.onStoreChanged((what) => what.some((w) => refreshOn.includes(w)) && this.refresh()),
      engine.onProjectOpened(() => this.refresh()),
    ];
  }

  refresh(): void {
    this.changed.fire(undefined);
  }

  getTreeItem(n: TreeNode): vscode.TreeItem {
    const state = n.children ? (n.expanded ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.Collapsed) : vscode.TreeItemCollapsibleState.None;
    const item = new vscode.TreeItem(n.label, state);
    item.id = n.id;
    item.description = n.description;
    item.tooltip = n.tooltip;
    if (n.icon) item.iconPath = new vscode.ThemeIcon(n.icon, n.iconColor ? new vscode.ThemeColor(n.iconColor) : undefined);
    item.contextValue = n.contextValue;
    item.command = n.command;
    return item;
  }

  async getChildren(n?: TreeNode): Promise<TreeNode[]> {
    if (n) return n.children ?? [];
    // A failed engine is started again only by a command (Restart Engine): views never loop on a crash.
    if (!this.hasProject() || this.engine.state === 'failed') return [];
    try {
      return await this.load(this);
    } catch (err) {
      // The status bar and the welcome content show an engine that cannot start; log the rest.
      this.log.warn(`view: ${err instanceof Error ? err.message : String(err)}`);
      return [];
    }
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
    this.changed.dispose();
  }
}

/** Registers the Rounds, Trajectories, Exports and Training runs views. */
export function registerViews(engine: Engine, log: vscode.LogOutputChannel, hasProject: () => boolean): vscode.Disposable[] {
  const trees: [string, EngineTree][] = [
    ['aries.rounds', new EngineTree(engine, log, hasProject, async () => {
      const [report, stats] = await Promise.all([engine.request(ReportRequest.type, {}), engine.request(StatsRequest.type, {})]);
      return roundsTree(report, stats);
    }, ['rounds', 'models', 'training', 'exports'])],
    ['aries.trajectories', new EngineTree(engine, log, hasProject, async (tree) => {
      const groups = await engine.request(TrajectoryGroupsRequest.type, {});
      if (tree.view) tree.view.description = groups.round === null ? undefined : `Round ${groups.round} · ${groups.strategy}`;
      return trajectoriesTree(groups);
    }, ['trajectories', 'rounds'])],
    ['aries.exports', new EngineTree(engine, log, hasProject, async () => exportsTree(await engine.request(ExportsRequest.type, {})), ['exports'])],
    ['aries.trainingRuns', new EngineTree(engine, log, hasProject, async () => trainingRunsTree(await engine.request(TrainingRunsRequest.type, {})), ['training'])],
  ];
  const out: vscode.Disposable[] = [];
  for (const [id, tree] of trees) {
    tree.view = vscode.window.createTreeView(id, { treeDataProvider: tree, showCollapseAll: id === 'aries.rounds' || id === 'aries.trajectories' });
    out.push(tree, tree.view);
  }
  out.push(vscode.commands.registerCommand('aries.refreshViews', () => trees.forEach(([, t]) => t.refresh())));
  return out;
}
