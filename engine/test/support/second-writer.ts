/**
 * A second writer on a project, run as its own process by fault-writers.test.ts:
 *   node --import tsx second-writer.ts ROOT MODE STOP_FILE SEED
 * It writes until STOP_FILE exists (or for two minutes at most).
 * MODE overrides: what the review UI does — pair / tie / discard overrides and undos on random
 * trajectories that have two steps. MODE import: imports small prompt files with new ids.
 * Every call goes through the engine's own functions and connection settings (openProject: WAL,
 * busy_timeout). Prints one JSON line: {ok, errors: [message...]}.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger } from '../../src/log';
import { addOverride, undoOverride } from '../../src/override/overrides';
import { closeProject, openProject, type Project } from '../../src/project/project';
import { importPrompts } from '../../src/prompt/import';
import { rng } from './synthetic-round';

const [root, mode, stopFile, seedText] = process.argv.slice(2);
const until = Date.now() + 120_000;
const pick = rng(Number(seedText));
let ok = 0;
const errors: string[] = [];

function overrideOnce(p: Project): void {
  const last = p.db.prepare('SELECT MAX(id) FROM trajectories WHERE round_id IS NOT NULL').pluck().get() as number | null;
  if (!last) return;
  const id = 1 + pick(last);
  const t = p.db.prepare('SELECT MIN(id) AS a, MAX(id) AS b FROM steps WHERE trajectory_id = ? HAVING COUNT(*) >= 2').get(id) as { a: number; b: number } | undefined;
  if (!t) return;
  const roll = pick(10);
  const curator = `writer-${process.pid}`;
  if (roll < 5) addOverride(p.db, { trajectoryId: id, curator, action: 'pair', chosenStepId: t.b, rejectedStepId: t.a, note: 'fault test' });
  else if (roll < 7) addOverride(p.db, { trajectoryId: id, curator, action: roll === 5 ? 'tie' : 'discard' });
  else undoOverride(p.db, id, curator);
  ok++;
}

let batch = 0;
function importOnce(p: Project): void {
  const file = join(root!, `.writer-${process.pid}-${batch}.jsonl`);
  const rows = Array.from({ length: 20 }, (_, i) => JSON.stringify({ id: `w${process.pid}-${batch}-${i}`, prompt: `extra ${batch} ${i}`, answer: i }));
  writeFileSync(file, `${rows.join('\n')}\n`);
  batch++;
  importPrompts(p.db, file, 'extra');
  ok++;
}

async function main(): Promise<void> {
  let p: Project | undefined;
  while (Date.now() < until && !existsSync(stopFile!)) {
    try {
      p ??= openProject(root!, silentLogger);
      if (mode === 'import') importOnce(p);
      else overrideOnce(p);
    } catch (err) {
      errors.push((err as Error).message);
    }
    await new Promise((r) => setTimeout(r, 2)); // a busy curator, not a spin loop
  }
  if (p) closeProject(p);
  process.stdout.write(`${JSON.stringify({ ok, errors })}\n`);
}

void main();
