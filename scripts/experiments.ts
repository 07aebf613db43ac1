/**
 * The experiments behind docs/results.md: the embedded ARIES loop against its ablations, several
 * seeds each, every run a fresh copy of a project driven by the real CLI (`aries run`).
 *
 *   npm run experiments -- [--project examples/arithmetic] [--rounds 3] [--seeds 1,2,3]
 *                          [--variants aries,idpo,rule,sft] [--out docs/results-experiments.md] [--work DIR]
 *                          [--jobs N]   (runs at once; each then generates with cores/N threads)
 *
 * Variants (each changes one thing of the project's aries.json):
 *   aries  the project's own config (examples/arithmetic: direct + refine + keep rows, verifier selection, DPO + NLL)
 *   answer as aries, the verifier judging the final answer only (no solution check)
 *   idpo   direct rows only (the iterative baseline: iterative DPO under the dpo objective)
 *   nokeep direct + refine rows (ARIES as published, without keep rows)
 *   dpo    as aries, trained with the dpo objective (training.dpo) instead of the project's
 *   sft    as aries, trained with the NLL term alone (training.sft) instead of the project's
 *   rule   the ARIES rule (last refinement over the first answer) instead of the verifier
 *   ruleg  the rule with its verifier guard (skip a pair the verifier says is the wrong way round)
 *   nonll  as dpo, with rpo_alpha 0 (pure preference loss)
 * Writes the table to --out and one image per variant (accuracy by round) to images/ beside it.
 * A run that already finished in --work is not run again (its report is reread), so the script
 * can be stopped and restarted.
 */
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { finished } from 'node:stream/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { EvaluationResults, RunReport } from '../engine/src/protocol/engine';

type Json = Record<string, unknown>;
const ROOT = resolve(__dirname, '..');

const VARIANTS: Record<string, { label: string; change: (c: Json) => void }> = {
  aries: { label: 'ARIES (direct + refine + keep rows, verifier)', change: () => undefined },
  answer: { label: 'ARIES, verifier on the final answer only', change: (c) => void (obj(c, 'selection').verifierScorer = 'verifier') },
  idpo: { label: 'iterative baseline (direct rows only, verifier)', change: (c) => void (obj(c, 'export').kinds = ['direct']) },
  nokeep: { label: 'ARIES without keep rows (direct + refine)', change: (c) => void (obj(c, 'export').kinds = ['direct', 'refine']) },
  dpo: { label: 'ARIES rows, DPO + NLL objective (training.dpo)', change: (c) => void (obj(c, 'training').objective = 'dpo') },
  sft: { label: 'ARIES rows, the NLL term alone (training.sft)', change: (c) => void (obj(c, 'training').objective = 'sft') },
  rule: { label: 'ARIES with rule selection', change: (c) => void (obj(c, 'selection').strategy = 'rule') },
  ruleg: { label: 'ARIES with rule selection, verifier guard', change: (c) => void Object.assign(obj(c, 'selection'), { strategy: 'rule', ruleGuard: 'verifier' }) },
  nonll: { label: 'ARIES rows, DPO without the NLL term (rpo_alpha 0)', change: (c) => void Object.assign(obj(c, 'training'), { objective: 'dpo', dpo: { ...obj(obj(c, 'training'), 'dpo'), rpo_alpha: 0 } }) },
};

function obj(c: Json, key: string): Json {
  const v = c[key];
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Json;
  const fresh: Json = {};
  c[key] = fresh;
  return fresh;
}

interface RunResult {
  variant: string;
  seed: number;
  report: RunReport;
  seconds: number;
}

async function runOne(project: string, work: string, variant: string, seed: number, rounds: number, threads: number): Promise<RunResult> {
  const dir = join(work, `${variant}-seed${seed}`);
  const done = join(dir, 'report.json');
  if (existsSync(done)) return refreshed(dir, done, rounds, JSON.parse(readFileSync(done, 'utf8')) as RunResult);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  // The project as it is, without its state: every run starts from the starting model.
  cpSync(project, dir, { recursive: true, filter: (src) => !src.split(/[\\/]/).includes('.aries') });
  const config = JSON.parse(readFileSync(join(dir, 'aries.json'), 'utf8')) as Json;
  const generation = obj(config, 'generation');
  generation.seed = seed;
  if (threads > 0) generation.threads = threads;
  const training = obj(config, 'training');
  for (const objective of ['dpo', 'sft']) obj(training, objective).seed = seed;
  VARIANTS[variant]?.change(config);
  writeFileSync(join(dir, 'aries.json'), `${JSON.stringify(config, null, 2)}\n`);
  const started = performance.now();
  process.stderr.write(`[experiments] ${variant} seed ${seed}: aries run --rounds ${rounds} in ${dir}\n`);
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'engine/src/cli/main.ts'), 'run', dir, '--rounds', String(rounds), '--json'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => void (stdout += d));
  // Each run's progress goes to its own log (several run at once); the last lines are shown on failure.
  const log = join(dir, 'run.log');
  const logFile = child.stderr.pipe(createWriteStream(log));
  const status = await new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  await finished(logFile);
  if (status !== 0) {
    const tail = readFileSync(log, 'utf8').split('\n').slice(-15).join('\n');
    throw new Error(`${variant} seed ${seed} failed (exit ${status}); see ${log}:\n${tail}`);
  }
  const result: RunResult = { variant, seed, report: JSON.parse(stdout) as RunReport, seconds: (performance.now() - started) / 1000 };
  writeFileSync(done, JSON.stringify(result, null, 2));
  process.stderr.write(`[experiments] ${variant} seed ${seed}: done in ${result.seconds.toFixed(0)} s\n`);
  return result;
}

/**
 * A finished run whose report predates the inference picks (anyCorrect, ruleSelected): each
 * evaluated model is summarised again from its stored trajectories (`aries eval --model ID`:
 * nothing is generated) and the report reread.
 */
async function refreshed(dir: string, done: string, rounds: number, result: RunResult): Promise<RunResult> {
  const evals = [result.report.base.evaluation, ...result.report.rounds.map((r) => r.evaluation)].filter((e) => e !== null);
  if (evals.every((e) => e.anyCorrect !== undefined && e.ruleSelected !== undefined)) return result;
  for (const e of evals) await cli(['eval', '-p', dir, '--model', String(e.modelId), '--json']);
  const report = JSON.parse(await cli(['run', dir, '--rounds', String(rounds), '--json'])) as RunReport;
  const fresh: RunResult = { ...result, report };
  writeFileSync(done, JSON.stringify(fresh, null, 2));
  return fresh;
}

async function cli(args: string[]): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'engine/src/cli/main.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => void (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => void (stderr += d));
  const status = await new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  if (status !== 0) throw new Error(`aries ${args.join(' ')} failed (exit ${status}): ${stderr.slice(-1500)}`);
  return stdout;
}

/** Runs the tasks `jobs` at a time, keeping their order in the result. */
async function pool<T>(tasks: Array<() => Promise<T>>, jobs: number): Promise<T[]> {
  const out: T[] = new Array<T>(tasks.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      const i = next++;
      out[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(jobs, tasks.length)) }, worker));
  return out;
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const sd = (xs: number[]): number => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1)));
const cell = (xs: number[]): string => (xs.length ? `${(100 * mean(xs)).toFixed(1)} ± ${(100 * sd(xs)).toFixed(1)}` : '–');

function table(results: RunResult[], rounds: number): string {
  const k = Math.max(...results.map((r) => r.report.base.evaluation?.refineAt.length ?? 0));
  const figure = (evals: EvaluationResults[], of: (e: EvaluationResults) => number | undefined): string => {
    const xs = evals.map(of);
    return xs.every((x) => x !== undefined) ? cell(xs as number[]) : '–';
  };
  // ARIES inference: the rule's pick of y0..yK, and the oracle's (any step right).
  const picks = (evals: EvaluationResults[]): string => `${figure(evals, (e) => e.ruleSelected)} | ${figure(evals, (e) => e.anyCorrect)}`;
  const lines = [
    `| variant | round | n | direct % | ${Array.from({ length: k }, (_, i) => `refine@${i + 1} %`).join(' | ')} | rule pick % | any step (oracle) % | rows d/r/k (mean) | wall s (mean) |`,
    `|---|---|---|---|${Array.from({ length: k }, () => '---').join('|')}|---|---|---|---|`,
  ];
  const variants = [...new Set(results.map((r) => r.variant))];
  const base = results.map((r) => r.report.base.evaluation).filter((e) => e !== null);
  lines.push(`| starting model | 0 | ${base[0]?.n ?? '–'} | ${cell(base.map((e) => e.direct))} | ${Array.from({ length: k }, (_, i) => cell(base.map((e) => e.refineAt[i] ?? 0))).join(' | ')} | ${picks(base)} | – | – |`);
  for (const v of variants) {
    const runs = results.filter((r) => r.variant === v);
    for (let round = 1; round <= rounds; round++) {
      const rows = runs.map((r) => r.report.rounds.find((x) => x.round === round)).filter((x) => x !== undefined);
      const evals = rows.map((r) => r.evaluation).filter((e) => e !== null);
      const pairs = `${mean(rows.map((r) => r.pairs.direct)).toFixed(0)}/${mean(rows.map((r) => r.pairs.refine)).toFixed(0)}/${mean(rows.map((r) => r.pairs.keep ?? 0)).toFixed(0)}`;
      const wall = mean(rows.map((r) => Object.values(r.seconds).reduce((a, b) => a + b, 0))).toFixed(0);
      lines.push(`| ${VARIANTS[v]?.label ?? v} | ${round} | ${evals[0]?.n ?? '–'} | ${cell(evals.map((e) => e.direct))} | ${Array.from({ length: k }, (_, i) => cell(evals.map((e) => e.refineAt[i] ?? 0))).join(' | ')} | ${picks(evals)} | ${pairs} | ${wall} |`);
    }
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      project: { type: 'string', default: 'examples/arithmetic' },
      rounds: { type: 'string', default: '3' },
      seeds: { type: 'string', default: '1,2,3' },
      variants: { type: 'string', default: 'aries,idpo,rule,sft' },
      out: { type: 'string', default: 'docs/results-experiments.md' },
      work: { type: 'string', default: join(tmpdir(), 'aries-experiments') },
      jobs: { type: 'string', default: '1' },
    },
  });
  const project = resolve(values.project);
  const rounds = Number(values.rounds);
  const seeds = values.seeds.split(',').map(Number);
  const variants = values.variants.split(',');
  for (const v of variants) if (!VARIANTS[v]) throw new Error(`unknown variant ${v}; use ${Object.keys(VARIANTS).join(', ')}`);
  mkdirSync(values.work, { recursive: true });
  const jobs = Number(values.jobs);
  if (!Number.isInteger(jobs) || jobs < 1) throw new Error(`--jobs must be a whole number ≥ 1, got "${values.jobs}"`);
  // One run alone keeps the project's thread setting; runs side by side share the cores.
  const threads = jobs > 1 ? Math.max(1, Math.floor(availableParallelism() / jobs)) : 0;
  const tasks = seeds.flatMap((seed) => variants.map((v) => () => runOne(project, values.work, v, seed, rounds, threads)));
  const results = await pool(tasks, jobs);
  const images = plots(results, rounds, resolve(dirname(resolve(values.out)), 'images'));
  const md = [
    `<!-- written by: npm run experiments -- --project ${values.project} --rounds ${rounds} --seeds ${values.seeds} --variants ${values.variants} -->`,
    `Held-out accuracy (verifier, greedy), mean ± sd over seeds ${seeds.join(', ')}; each run is \`aries run ${values.project} --rounds ${rounds}\` on a fresh copy with generation.seed and training seed set to the seed.`,
    '',
    table(results, rounds),
    '',
    `Wall time per run: ${results.map((r) => `${r.variant}/${r.seed} ${r.seconds.toFixed(0)} s`).join(', ')}.`,
    '',
    ...images.map((f) => `![${basename(f, '.png')}](${relative(dirname(resolve(values.out)), f)})`),
  ].join('\n');
  writeFileSync(resolve(values.out), `${md}\n`);
  process.stdout.write(`${md}\n`);
}

/** One image per variant (scripts/plot_experiments.py, matplotlib from the venv): accuracy by round. */
function plots(results: RunResult[], rounds: number, outDir: string): string[] {
  const data: Record<string, { label: string; refineLabel: string; rounds: { round: number; direct: number[]; refine: number[]; oracle: number[] }[] }> = {};
  for (const v of [...new Set(results.map((r) => r.variant))]) {
    const runs = results.filter((r) => r.variant === v);
    const at = (round: number) => runs.map((r) => (round === 0 ? r.report.base.evaluation : (r.report.rounds.find((x) => x.round === round)?.evaluation ?? null))).filter((e) => e !== null);
    const k = runs[0]?.report.base.evaluation?.refineAt.length ?? 0;
    data[v] = {
      label: VARIANTS[v]?.label ?? v,
      refineLabel: `refine@${k}`,
      rounds: Array.from({ length: rounds + 1 }, (_, round) => {
        const evals = at(round);
        return { round, direct: evals.map((e) => e.direct), refine: evals.map((e) => e.refineAt.at(-1) ?? 0), oracle: evals.every((e) => e.anyCorrect !== undefined) ? evals.map((e) => e.anyCorrect!) : [] };
      }),
    };
  }
  const input = join(tmpdir(), `aries-experiments-plot-${process.pid}.json`);
  writeFileSync(input, JSON.stringify(data));
  const python = process.env.ARIES_PYTHON ?? join(ROOT, '.venv/bin/python');
  const r = spawnSync(python, [join(ROOT, 'scripts/plot_experiments.py'), input, outDir], { encoding: 'utf8' });
  rmSync(input, { force: true });
  if (r.status !== 0) {
    process.stderr.write(`[experiments] no plots (${python} scripts/plot_experiments.py failed): ${r.stderr.slice(-500)}\n`);
    return [];
  }
  return r.stdout.trim().split('\n').filter(Boolean);
}

main().catch((err: unknown) => {
  process.stderr.write(`experiments: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
