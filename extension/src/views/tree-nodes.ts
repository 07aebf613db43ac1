import type { EvaluationResults, ExportEntry, ProjectStats, RunReport, TrainingRunEntry, TrajectoryGroupName, TrajectoryGroups } from '../../../engine/src/protocol/engine';
import { basename } from 'node:path';
import { fmt, pct, rowKinds, rowTotal, trainingMetrics } from '../progress-text';

/**
 * What the four ARIES views show, as plain data built from the engine's answers; views/trees.ts
 * turns these into TreeItems. No `vscode` import: unit-tested under plain Node.
 */
export interface TreeNode {
  id: string;
  label: string;
  description?: string;
  tooltip?: string;
  /** A codicon id, and optionally a theme color id for it. */
  icon?: string;
  iconColor?: string;
  contextValue?: string;
  children?: TreeNode[];
  expanded?: boolean;
  command?: { command: string; title: string; arguments?: unknown[] };
}

export const COMMAND_OPEN_FILE = 'aries.openFile';
export const COMMAND_OPEN_REVIEW = 'aries.openReview';

function accuracy(e: EvaluationResults | null): string {
  if (!e) return 'not evaluated';
  const k = e.refineAt.length;
  return k ? `direct ${pct(e.direct)} → refine@${k} ${pct(e.refineAt[k - 1])}` : `direct ${pct(e.direct)}`;
}

function statusIcon(status: string): { icon: string; iconColor?: string } {
  if (status === 'trained' || status === 'succeeded') return { icon: 'pass', iconColor: 'testing.iconPassed' };
  if (status === 'failed') return { icon: 'error', iconColor: 'testing.iconFailed' };
  if (status === 'cancelled') return { icon: 'circle-slash' };
  if (status === 'running' || status === 'training') return { icon: 'loading~spin' };
  return { icon: 'circle-large-outline' };
}

function seconds(t: Record<string, number>): string {
  const parts = Object.entries(t).map(([phase, s]) => `${phase} ${s < 10 ? s.toFixed(1) : Math.round(s)}s`);
  return parts.join(', ');
}

/** Rounds: the base model, then each round with status, metrics and lineage, then the model list. */
export function roundsTree(report: RunReport, stats: ProjectStats): TreeNode[] {
  if (stats.rounds.length === 0) return [];
  const byRound = new Map(report.rounds.map((r) => [r.round, r]));
  const nodes: TreeNode[] = [
    { id: 'base', label: `Base model: ${report.base.model}`, description: accuracy(report.base.evaluation), icon: 'circuit-board', tooltip: 'Held-out accuracy of the starting model (first answer, and after K self-refinements)' },
  ];
  for (const r of stats.rounds) {
    const trained = byRound.get(r.round);
    const model = stats.models.find((m) => m.round === r.round);
    const parent = model ? stats.models.find((m) => m.id === model.parent) : undefined;
    const children: TreeNode[] = [
      { id: `round-${r.round}/status`, label: 'Status', description: r.error ? `${r.status}: ${r.error}` : r.status, tooltip: r.error ?? undefined },
      { id: `round-${r.round}/trajectories`, label: 'Trajectories', description: `${r.trajectories} · ${r.steps} steps${r.overrides ? ` · ${r.overrides} overridden` : ''}` },
    ];
    if (trained) {
      children.push(
        { id: `round-${r.round}/pairs`, label: 'Pairs', description: rowKinds(trained.pairs) },
        { id: `round-${r.round}/heldout`, label: 'Held-out', description: accuracy(trained.evaluation), tooltip: trained.evaluation ? `${trained.evaluation.n} held-out prompts, greedy` : undefined },
        { id: `round-${r.round}/training`, label: 'Training', description: trainingMetrics({ loss: trained.trainLoss, 'rewards/margins': trained.rewardMargin, 'rewards/accuracies': trained.rewardAccuracy }) || '–' },
        { id: `round-${r.round}/time`, label: 'Time', description: seconds(trained.seconds) || '–' },
      );
    }
    if (model) children.push({ id: `round-${r.round}/model`, label: 'Model', description: `${model.name} ← ${parent?.name ?? 'base'}${model.current ? ' (current)' : ''}`, tooltip: model.path, icon: 'circuit-board' });
    const headline = trained ? `${trained.evaluation ? accuracy(trained.evaluation) : ''}${trained.trainLoss !== null ? ` · loss ${fmt(trained.trainLoss)}` : ''}` : r.status;
    nodes.push({ id: `round-${r.round}`, label: `Round ${r.round}`, description: headline, ...statusIcon(r.status), contextValue: 'round', children, expanded: r.round === stats.rounds.at(-1)?.round });
  }
  const names = new Map(stats.models.map((m) => [m.id, m.name]));
  nodes.push({
    id: 'models',
    label: 'Models',
    description: `${stats.models.length}`,
    icon: 'type-hierarchy',
    children: stats.models.map((m) => ({
      id: `model-${m.id}`,
      label: m.name,
      description: [m.parent !== null ? `← ${names.get(m.parent) ?? m.parent}` : 'starting model', m.round !== null ? `round ${m.round}` : '', m.current ? 'current' : ''].filter(Boolean).join(' · '),
      tooltip: m.path,
      icon: m.current ? 'star-full' : 'circuit-board',
    })),
  });
  return nodes;
}

const GROUP: Record<TrajectoryGroupName, { label: string; icon: string; tooltip: string }> = {
  'needs-review': { label: 'Needs review', icon: 'eye', tooltip: 'No curator decision yet, and the strategies disagree (or have not run)' },
  'auto-selected': { label: 'Auto-selected', icon: 'check', tooltip: 'The exported strategy picked a pair and the other strategies agree' },
  overridden: { label: 'Overridden', icon: 'person', tooltip: 'A curator decided; this wins over every strategy' },
  skipped: { label: 'Skipped', icon: 'circle-slash', tooltip: 'The exported strategy skipped it and the other strategies agree' },
};

/** Trajectories: the four groups with counts; items open the review at that trajectory. */
export function trajectoriesTree(g: TrajectoryGroups): TreeNode[] {
  if (g.round === null || g.total === 0) return [];
  return g.groups.map((group) => {
    const meta = GROUP[group.name];
    const children: TreeNode[] = group.items.map((t) => ({
      id: `t-${t.id}`,
      label: `#${t.seq + 1} ${t.preview.replace(/\s+/g, ' ').trim().slice(0, 60)}`,
      description: t.detail,
      tooltip: `${t.promptId} · ${t.steps} steps\n${t.preview}\n${t.detail}`,
      contextValue: 'trajectory',
      command: { command: COMMAND_OPEN_REVIEW, title: 'Open in Review', arguments: [t.id] },
    }));
    if (group.count > group.items.length) {
      children.push({ id: `more-${group.name}`, label: `… ${group.count - group.items.length} more`, description: 'Open Review to see all', command: { command: COMMAND_OPEN_REVIEW, title: 'Open Review' } });
    }
    return { id: `group-${group.name}`, label: meta.label, description: `${group.count}`, tooltip: meta.tooltip, icon: meta.icon, contextValue: 'trajectoryGroup', children, expanded: group.name === 'needs-review' && group.count > 0 };
  });
}

/** Exports: newest first; each opens the dataset file. */
export function exportsTree(list: ExportEntry[]): TreeNode[] {
  return list.map((e) => ({
    id: `export-${e.id}`,
    label: `Round ${e.round} · ${basename(e.path)}`,
    description: e.counts ? `${rowTotal(e.counts)} rows (${rowKinds(e.counts)})` : '',
    tooltip: `${e.path}\nsha256 ${e.sha256}\n${e.createdAt}`,
    icon: 'file-code',
    contextValue: 'export',
    command: { command: COMMAND_OPEN_FILE, title: 'Open Export', arguments: [e.path] },
  }));
}

/** Training runs: newest first; each opens its train.log. */
export function trainingRunsTree(list: TrainingRunEntry[]): TreeNode[] {
  return list.map((r) => ({
    id: `run-${r.id}`,
    label: `Run ${r.id} · round ${r.round}`,
    description: [r.status, r.model ? `→ ${r.model}` : '', trainingMetrics(r.lastMetrics)].filter(Boolean).join(' · '),
    tooltip: [`${r.baseModel} → ${r.model ?? '(no model)'}`, `started ${r.startedAt}${r.finishedAt ? `, finished ${r.finishedAt}` : ''}`, r.error ? `error: ${r.error}` : '', r.logPath].filter(Boolean).join('\n'),
    ...statusIcon(r.status),
    contextValue: 'trainingRun',
    command: { command: COMMAND_OPEN_FILE, title: 'Open Training Log', arguments: [r.logPath] },
  }));
}
