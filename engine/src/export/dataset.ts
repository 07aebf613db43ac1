import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, readlinkSync, realpathSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { badInput, EngineError } from '../errors';
import type { PromptInput } from '../generation/backend';
import { getModel } from '../model/registry';
import type { PairKind } from '../project/config';
import type { Project } from '../project/project';
import { roundPairs } from '../pair/pairs';
import type { DatasetCompletion, DatasetPrompt, DatasetRow } from '../protocol/trainer';
import { refinePrompt, templateIdentity } from '../refinement/template';
import { getRound } from '../round/rounds';
import { writeAll } from '../files';
import { now, parseJson } from '../store/db';
import type { ExportCounts } from '../protocol/engine-types';
export type { ExportCounts } from '../protocol/engine-types';

export interface ExportOptions {
  /**
   * Where to write; must be inside the project folder. Default .aries/exports/round-N/data/train.jsonl,
   * with the manifest at .aries/exports/round-N/manifest.json, so the data folder holds only the data
   * (`trl dpo --dataset_name .aries/exports/round-N/data` loads it as the train split).
   * For another path the manifest is written beside it as <path>.manifest.json.
   */
  path?: string;
  kinds?: PairKind[];
  format?: 'conversational' | 'string';
}

export interface ExportResult {
  exportId: number;
  path: string;
  manifestPath: string;
  sha256: string;
  counts: ExportCounts;
}

/** An export's stored counts (`exports.counts_json`); exports written before keep rows existed count 0 of them. */
export function parseExportCounts(json: string | null, what: string): ExportCounts | null {
  const c = parseJson<Omit<ExportCounts, 'keep'> & { keep?: number }>(json, what);
  return c ? { ...c, keep: c.keep ?? 0 } : null;
}

const asPrompt = (p: PromptInput, format: 'conversational' | 'string'): DatasetPrompt =>
  format === 'string' ? (typeof p === 'string' ? p : p.map((m) => m.content).join('\n')) : typeof p === 'string' ? [{ role: 'user', content: p }] : p;

const asCompletion = (text: string, format: 'conversational' | 'string'): DatasetCompletion =>
  format === 'string' ? text : [{ role: 'assistant', content: text }];

/**
 * Resolves an export path and refuses one that leaves the project folder, by its name or through a
 * symbolic link: the deepest part of the path that exists (a link too, dangling or not) is resolved
 * to where it really is, and that must be inside the project folder's real location.
 */
export function safeExportPath(root: string, path: string): string {
  const full = resolve(root, path);
  const outside = (rel: string): boolean => rel.startsWith('..') || isAbsolute(rel);
  if (outside(relative(resolve(root), full))) throw badInput(`export path ${path} is outside the project folder ${root}`, 'write exports inside the project');
  let existing = full;
  const rest: string[] = [];
  while (!lstatSync(existing, { throwIfNoEntry: false })) {
    rest.unshift(basename(existing));
    existing = dirname(existing);
  }
  let real: string;
  try {
    real = join(realpathSync(existing), ...rest);
  } catch (err) {
    let target: string;
    try {
      target = resolve(dirname(existing), readlinkSync(existing)); // a dangling link: where it points is where the file would go
    } catch {
      throw badInput(`export path ${path}: ${existing} cannot be resolved (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, 'write exports to a plain folder inside the project');
    }
    real = join(target, ...rest);
  }
  if (outside(relative(realpathSync(root), real))) {
    throw badInput(`export path ${path} is outside the project folder ${root}: ${existing} is a link to ${real}`, 'write exports inside the project (replace the link by a folder)');
  }
  return full;
}

/**
 * Writes the round's ARIES dataset: for every pair (override first, else the configured strategy)
 * a direct row x -> y_w over y_l and a refine row refine(x, y_l) -> y_w over y_l, and with the `keep`
 * kind a keep row refine(x, y_w) -> y_w over y_l (refining a right answer keeps it); then a manifest
 * with counts, sha256 and the config. Both files are written to a temporary name, fsynced and
 * renamed, so a killed export never leaves a file that looks complete.
 */
export function exportRound(p: Project, roundId: number, options: ExportOptions = {}): ExportResult {
  const round = getRound(p.db, roundId);
  const kinds = options.kinds ?? p.config.export.kinds;
  const format = options.format ?? p.config.export.format;
  const strategy = p.config.selection.strategy;
  const defaultDir = `${p.stateDir}/exports/round-${round.idx}`;
  const path = safeExportPath(p.root, options.path ?? `${defaultDir}/data/train.jsonl`);
  const policy = getModel(p.db, round.policy_model_id);
  const { pairs, skipped, overridden } = roundPairs(p.db, roundId, strategy);
  const counts: ExportCounts = { total: 0, direct: 0, refine: 0, keep: 0, pairs: pairs.length, skipped, overridden, byStrategy: {} };
  const lines: string[] = [];
  for (const pair of pairs) {
    for (const kind of kinds) {
      const prompt = kind === 'direct' ? pair.prompt : refinePrompt(p.template, pair.prompt, kind === 'refine' ? pair.rejected.text : pair.chosen.text);
      const row: DatasetRow = {
        id: `r${round.idx}-t${pair.trajectoryId}-${kind}`,
        kind,
        prompt: asPrompt(prompt, format),
        chosen: asCompletion(pair.chosen.text, format),
        rejected: asCompletion(pair.rejected.text, format),
        round: round.idx,
        strategy: pair.strategy,
        source: pair.source,
        curator: pair.curator,
        prompt_id: pair.promptId,
        trajectory_id: pair.trajectoryId,
        chosen_step: pair.chosen.idx,
        rejected_step: pair.rejected.idx,
        chosen_step_id: pair.chosen.stepId,
        rejected_step_id: pair.rejected.stepId,
        policy_model: policy.name,
      };
      lines.push(JSON.stringify(row));
      counts[kind]++;
      counts.total++;
      counts.byStrategy[pair.strategy] = (counts.byStrategy[pair.strategy] ?? 0) + 1;
    }
  }
  const body = lines.length ? `${lines.join('\n')}\n` : '';
  const sha256 = createHash('sha256').update(body).digest('hex');
  const config = { strategy, kinds, format, ...templateIdentity(p.template), templatePath: p.template.path, policyModel: policy.name };
  const manifestPath = options.path ? `${path}.manifest.json` : resolve(defaultDir, 'manifest.json');
  writeAtomic(path, body);
  const info = p.db
    .prepare('INSERT INTO exports (round_id, path, sha256, counts_json, config_json, created_at) VALUES (?, ?, ?, ?, ?, ?)')
    .run(roundId, path, sha256, JSON.stringify(counts), JSON.stringify(config), now());
  const exportId = Number(info.lastInsertRowid);
  writeAtomic(manifestPath, `${JSON.stringify({ exportId, round: round.idx, path, sha256, counts, config, createdAt: now() }, null, 2)}\n`);
  return { exportId, path, manifestPath, sha256, counts };
}

/**
 * Writes `body` to `path` through a hidden temporary sibling (`.train.jsonl.tmp-<pid>`), fsynced and
 * renamed over the target. Hidden because dataset loaders read a folder's visible files: `trl dpo
 * --dataset_name data/` would take a visible `train.jsonl.tmp-123` left by a killed export as part
 * of the train split. Temporaries left by processes that are gone are removed first.
 */
export function writeAtomic(path: string, body: string): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const prefix = `.${basename(path)}.tmp-`;
  removeStaleTemporaries(dir, prefix);
  const tmp = join(dir, `${prefix}${process.pid}`);
  try {
    const fd = openSync(tmp, 'w');
    try {
      writeAll(fd, body, tmp);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EFBIG' || code === 'EDQUOT') {
      throw new EngineError('STORE', `${path}: no space left to write it (${code})`, 'free disk space and run the command again; completed work is kept');
    }
    throw err;
  }
}

function removeStaleTemporaries(dir: string, prefix: string): void {
  for (const name of readdirSync(dir)) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length));
    if (Number.isInteger(pid) && pid !== process.pid && !processAlive(pid)) rmSync(join(dir, name), { force: true });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
