import { resolve } from 'node:path';
import { EngineError, asEngineError, badInput } from '../errors';
import type { Logger } from '../log';
import { OVERRIDE_ACTIONS, type OverrideAction, addOverride } from '../override/overrides';
import { type JobControl } from '../progress';
import { PAIR_KINDS, type PairKind, STRATEGIES, type StrategyName } from '../project/config';
import { initProject } from '../project/init';
import { closeProject, openProject, type Project } from '../project/project';
import { importPromptFiles } from '../prompt/import';
import { evaluatePhase, exportPhase, generatePhase, scorePhase, selectPhase, trainPhase } from '../round/phases';
import { runReport, runRounds } from '../round/run-loop';
import { reapStaleRuns } from '../round/train';
import { projectStats } from '../round/stats';
import { startServer } from '../server/server';
import { progressBar, renderRunReport, renderTable } from './terminal';
import { visibleControls } from './visible';

export interface CommandContext {
  args: string[];
  values: Record<string, string | boolean | undefined>;
  json: boolean;
  log: Logger;
  signal: AbortSignal;
}

type Command = (ctx: CommandContext) => Promise<unknown>;

const str = (ctx: CommandContext, key: string): string | undefined => {
  const v = ctx.values[key];
  return typeof v === 'string' ? v : undefined;
};

/** Opens the project, gives the command a job control with a progress bar, closes it after. */
async function withProject<T>(ctx: CommandContext, root: string | undefined, work: (p: Project, job: JobControl) => Promise<T>): Promise<T> {
  const p = openProject(resolve(root ?? str(ctx, 'project') ?? '.'), ctx.log);
  // As the server does on open: a run left "running" by a killed engine is marked failed.
  reapStaleRuns(p.db);
  const bar = progressBar(process.stderr, ctx.json ? 'lines' : 'auto');
  try {
    return await work(p, { signal: ctx.signal, progress: bar });
  } catch (err) {
    throw asEngineError(err, p.db.name); // a store error names the database
  } finally {
    bar.finish();
    closeProject(p);
  }
}

const say = (ctx: CommandContext, text: string): void => {
  if (!ctx.json) process.stdout.write(`${visibleControls(text)}\n`);
};

function strategiesOption(value: string | undefined): StrategyName[] | undefined {
  if (!value) return undefined;
  const list = value.split(',').map((s) => s.trim());
  for (const s of list) if (!(STRATEGIES as readonly string[]).includes(s)) throw badInput(`--strategy "${s}" is unknown`, `use ${STRATEGIES.join(', ')}`);
  return list as StrategyName[];
}

export const COMMANDS: Record<string, Command> = {
  async init(ctx) {
    const dir = resolve(ctx.args[0] ?? str(ctx, 'project') ?? '.');
    const from = ctx.values.empty ? 'empty' : (str(ctx, 'example') ?? 'arithmetic');
    const result = initProject(dir, from, ctx.values.force === true);
    say(ctx, `created ${result.root} (${from}): ${result.files.join(', ')}\nnext: aries run ${result.root}`);
    return result;
  },

  async import(ctx) {
    if (ctx.args.length === 0) throw badInput('aries import needs at least one FILE');
    return withProject(ctx, undefined, async (p) => {
      const results = importPromptFiles(p.db, ctx.args.map((f) => resolve(f)), str(ctx, 'split') ?? 'train');
      for (const r of results) say(ctx, `${r.file}: ${r.added} added, ${r.unchanged} already there (${r.split})`);
      return results;
    });
  },

  async generate(ctx) {
    return withProject(ctx, undefined, async (p, job) => {
      const { round, summary } = await generatePhase(p, job);
      say(ctx, `round ${round.idx}: ${summary.stepsWritten} steps written for ${summary.trajectories} open trajectories (${summary.stoppedRepeated} stopped early: repeated answer)`);
      return { round: round.idx, ...summary };
    });
  },

  async score(ctx) {
    return withProject(ctx, undefined, async (p, job) => {
      const { round, scored } = await scorePhase(p, job);
      say(ctx, `round ${round.idx}: ${Object.entries(scored).map(([k, v]) => `${k} scored ${v} steps`).join(', ')}`);
      return { round: round.idx, scored };
    });
  },

  async select(ctx) {
    return withProject(ctx, undefined, async (p, job) => {
      const { round, summary } = await selectPhase(p, strategiesOption(str(ctx, 'strategy')), job);
      say(ctx, renderTable(['strategy', 'pairs', 'skipped'], Object.entries(summary.byStrategy).map(([s, c]) => [s, String(c.pairs), String(c.skipped)])));
      return { round: round.idx, ...summary };
    });
  },

  async export(ctx) {
    return withProject(ctx, undefined, async (p) => {
      const format = str(ctx, 'format');
      if (format && format !== 'conversational' && format !== 'string') throw badInput(`--format "${format}" is unknown`, 'use conversational or string');
      const kinds = str(ctx, 'kinds')?.split(',') as PairKind[] | undefined;
      if (kinds?.some((k) => !(PAIR_KINDS as readonly string[]).includes(k))) throw badInput(`--kinds "${str(ctx, 'kinds')}" is unknown`, 'use a comma-separated list of direct, refine, keep (e.g. direct,refine)');
      const { round, result } = await exportPhase(p, { path: str(ctx, 'out'), format: format as 'conversational' | 'string' | undefined, kinds });
      say(ctx, `round ${round.idx}: ${result.counts.total} rows (${result.counts.direct} direct, ${result.counts.refine} refine${result.counts.keep ? `, ${result.counts.keep} keep` : ''}) -> ${result.path}\nsha256 ${result.sha256}`);
      return { round: round.idx, ...result };
    });
  },

  async train(ctx) {
    return withProject(ctx, undefined, async (p, job) => {
      const { round, result } = await trainPhase(p, job);
      say(ctx, `round ${round.idx}: trained ${result.steps} steps, loss ${result.trainLoss?.toFixed(4) ?? '-'}; new current model ${result.outputDir}`);
      return { round: round.idx, ...result };
    });
  },

  async eval(ctx) {
    return withProject(ctx, undefined, async (p, job) => {
      const model = str(ctx, 'model');
      const limit = str(ctx, 'limit') === undefined ? undefined : intOption(str(ctx, 'limit'), 'limit', 0);
      const r = await evaluatePhase(p, model === undefined ? null : intOption(model, 'model', 0), job, limit);
      // ARIES inference: one answer of y0..yK picked per prompt (by the rule, the reward model, an oracle).
      const picks: [string, number | undefined][] = [['rule pick', r.ruleSelected], [`${r.rmScorer ?? 'rm'} pick`, r.rmSelected], ['any step (oracle)', r.anyCorrect]];
      const shown = picks.filter((x): x is [string, number] => x[1] !== undefined);
      say(ctx, renderTable(['n', 'direct', ...r.refineAt.map((_, i) => `refine@${i + 1}`), ...shown.map((x) => x[0])], [[String(r.n), pctText(r.direct), ...r.refineAt.map(pctText), ...shown.map((x) => pctText(x[1]))]]));
      return r;
    });
  },

  async run(ctx) {
    const rounds = intOption(str(ctx, 'rounds'), 'rounds', 3);
    return withProject(ctx, ctx.args[0], async (p, job) => {
      const started = performance.now();
      const report = await runRounds(p, rounds, job, (r) => {
        if (!ctx.json) process.stderr.write(`round ${r.round} done: direct ${pctText(r.evaluation?.direct ?? 0)}, refine@K ${pctText(r.evaluation?.refineAt.at(-1) ?? 0)}\n`);
      });
      say(ctx, `\n${renderRunReport(report)}\n\nwall time ${((performance.now() - started) / 1000).toFixed(0)}s; project state in ${p.stateDir}`);
      return report;
    });
  },

  async stats(ctx) {
    return withProject(ctx, undefined, async (p) => {
      const s = projectStats(p, ctx.values.check === true);
      say(ctx, JSON.stringify(s, null, 2));
      if (s.integrity && s.integrity !== 'ok') throw new EngineError('STORE', `integrity_check: ${s.integrity}`);
      return s;
    });
  },

  async report(ctx) {
    return withProject(ctx, ctx.args[0], async (p) => {
      const r = runReport(p);
      say(ctx, renderRunReport(r));
      return r;
    });
  },

  async override(ctx) {
    const trajectoryId = intOption(ctx.args[0], 'trajectory', -1);
    const action = str(ctx, 'action');
    if (trajectoryId < 0 || !action) throw badInput('usage: aries override TRAJECTORY_ID --action accept|pair|swap|tie|discard');
    if (!(OVERRIDE_ACTIONS as readonly string[]).includes(action)) throw badInput(`--action "${action}" is unknown`, `use ${OVERRIDE_ACTIONS.join(', ')}`);
    return withProject(ctx, undefined, async (p) => {
      const row = addOverride(p.db, {
        trajectoryId,
        curator: str(ctx, 'curator') ?? process.env.USER ?? 'curator',
        action: action as OverrideAction,
        chosenStepId: str(ctx, 'chosen') === undefined ? undefined : intOption(str(ctx, 'chosen'), 'chosen', 0),
        rejectedStepId: str(ctx, 'rejected') === undefined ? undefined : intOption(str(ctx, 'rejected'), 'rejected', 0),
        strategy: str(ctx, 'strategy') ?? p.config.selection.strategy,
        note: str(ctx, 'note'),
      });
      say(ctx, `override ${row.id} on trajectory ${trajectoryId}: ${row.action}`);
      return row;
    });
  },

  async serve(ctx) {
    // Runs until the client sends exit, or the engine is told to stop (SIGTERM / Ctrl-C: the signal
    // below) or loses its client (stdin ends): then a running job is cancelled at a safe boundary,
    // the store is closed, and the process ends.
    const server = startServer();
    await new Promise<void>((resolve) => {
      if (ctx.signal.aborted) return resolve();
      ctx.signal.addEventListener('abort', () => resolve(), { once: true });
      process.stdin.once('end', () => resolve());
    });
    await server.shutdown();
    process.exit(0);
  },
};

function pctText(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

export function intOption(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw badInput(`--${flag} must be a whole number ≥ 0, got "${value}"`);
  return n;
}
