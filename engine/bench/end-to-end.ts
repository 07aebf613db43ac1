import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb } from '../src/store/db';
import { REPO_ROOT } from '../test/support/tiny-model';
import { fmt } from './measure';
import { info, skipped, type Finding, type SectionResult } from './report';

/**
 * End to end: `aries init DIR` (a copy of examples/arithmetic) then `aries run DIR --rounds 1`,
 * from the sources, timed from outside; the split by phase comes from the round's timings_json
 * (generate/score/select/export/train seconds) and the evaluations' own start and finish times.
 */

const SECTION = 'end to end';
const CLI = join(REPO_ROOT, 'engine/src/cli/main.ts');
const EXAMPLE = join(REPO_ROOT, 'examples/arithmetic');

export function exampleMissing(): string | undefined {
  for (const f of ['aries.json', 'model/onnx/model.onnx']) {
    if (!existsSync(join(EXAMPLE, f))) return `examples/arithmetic/${f} is not there yet`;
  }
  return undefined;
}

export async function endToEndBench(log: (line: string) => void): Promise<SectionResult> {
  const missing = exampleMissing();
  if (missing) return { findings: [skipped(SECTION, 'aries run examples/arithmetic --rounds 1', missing)], notes: [] };
  const dir = mkdtempSync(join(tmpdir(), 'aries-bench-e2e-'));
  const project = join(dir, 'arithmetic');
  try {
    const init = cli(['init', project]);
    if (init.status !== 0) throw new Error(`aries init failed (exit ${init.status}): ${init.stderr}`);
    return timedRun(project, log);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function cli(args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: REPO_ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
}

/** `aries run PROJECT --rounds 1`, timed from outside, split by phase from what the run recorded. */
export function timedRun(project: string, log: (line: string) => void): SectionResult {
  log(`  aries run ${project} --rounds 1`);
  const started = performance.now();
  const run = cli(['run', project, '--rounds', '1']);
  const wallS = (performance.now() - started) / 1000;
  if (run.status !== 0) throw new Error(`aries run failed (exit ${run.status}):\n${run.stderr.slice(-3000)}`);
  const db = openDb(join(project, '.aries/aries.db'), { readonly: true });
  let phases: Record<string, number>;
  let evaluations: { model_id: number; seconds: number }[];
  try {
    const round = db.prepare('SELECT timings_json FROM rounds ORDER BY idx LIMIT 1').get() as { timings_json: string };
    phases = JSON.parse(round.timings_json) as Record<string, number>;
    evaluations = (
      db.prepare("SELECT model_id, created_at, finished_at FROM evaluations WHERE status = 'complete' ORDER BY id").all() as { model_id: number; created_at: string; finished_at: string }[]
    ).map((e) => ({ model_id: e.model_id, seconds: (Date.parse(e.finished_at) - Date.parse(e.created_at)) / 1000 }));
  } finally {
    db.close();
  }
  const order = ['generate', 'score', 'select', 'export', 'train'];
  const names = [...order.filter((k) => k in phases), ...Object.keys(phases).filter((k) => !order.includes(k))];
  const evalS = evaluations.reduce((n, e) => n + e.seconds, 0);
  const accounted = names.reduce((n, k) => n + (phases[k] ?? 0), 0) + evalS;
  const share = (x: number) => `${fmt.num((100 * x) / wallS, 0)} % of wall`;
  const findings: Finding[] = [info(SECTION, 'aries run --rounds 1: wall', `${fmt.num(wallS, 1)} s`, `phases + evaluations ${fmt.num(accounted, 1)} s`)];
  for (const k of names) findings.push(info(SECTION, `  ${k}`, `${fmt.num(phases[k]!, 2)} s`, share(phases[k]!)));
  evaluations.forEach((e, i) => findings.push(info(SECTION, `  evaluate (${i === 0 ? 'base model' : 'trained model'})`, `${fmt.num(e.seconds, 2)} s`, share(e.seconds))));
  findings.push(info(SECTION, '  the rest (start-up, import, report)', `${fmt.num(wallS - accounted, 2)} s`, share(wallS - accounted)));
  return {
    findings,
    notes: [
      `- \`aries init DIR\` (a copy of examples/arithmetic: its aries.json, prompts and model), then \`node --import tsx engine/src/cli/main.ts run DIR --rounds 1\`, timed from outside (one run). ` +
        'Phases from the round\'s timings_json; evaluations (held-out, direct + refine@k) from their start and finish times; "the rest" is Node and tsx start-up, prompt import and the report.',
    ],
  };
}
