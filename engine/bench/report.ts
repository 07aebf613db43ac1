import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fmt, type MachineInfo } from './measure';

/**
 * What the benchmarks found, as one table: each row is a measured figure, what it was compared
 * with, the ratio and the target it is checked against (PASS / MISS), or INFO for figures that
 * only get reported. The same rows go to the terminal and into docs/benchmarks.md, between two
 * markers, so the hand-written analysis around them survives a rerun.
 */

export type Verdict = 'PASS' | 'MISS' | 'INFO' | 'SKIP';

export interface Finding {
  section: string;
  subject: string;
  /** Our figure, formatted with its unit. */
  ours: string;
  /** What it is compared with, formatted (the peer, the floor, or the ideal). */
  against: string;
  ratio?: number;
  /** e.g. '≥ 3.0×'; empty for INFO rows. */
  target: string;
  verdict: Verdict;
}

export interface SectionResult {
  findings: Finding[];
  /** Markdown lines: the setup (sizes, settings, which path was measured) and anything worth saying. */
  notes: string[];
}

/** A ratio checked against a lower bound. */
export function atLeast(section: string, subject: string, ours: string, against: string, ratio: number, min: number): Finding {
  return { section, subject, ours, against, ratio, target: `≥ ${min.toFixed(1)}×`, verdict: ratio >= min ? 'PASS' : 'MISS' };
}

/** A ratio checked against an upper bound (overhead over a floor). */
export function atMost(section: string, subject: string, ours: string, against: string, ratio: number, max: number): Finding {
  return { section, subject, ours, against, ratio, target: `≤ ${max.toFixed(1)}×`, verdict: ratio <= max ? 'PASS' : 'MISS' };
}

export function info(section: string, subject: string, ours: string, against = '', ratio?: number): Finding {
  return { section, subject, ours, against, ...(ratio === undefined ? {} : { ratio }), target: '', verdict: 'INFO' };
}

export function skipped(section: string, subject: string, why: string): Finding {
  return { section, subject, ours: '–', against: why, target: '', verdict: 'SKIP' };
}

export function terminalTable(findings: readonly Finding[]): string {
  const head = ['section', 'what', 'ours', 'against', 'ratio', 'target', ''];
  const rows = findings.map((f) => [f.section, f.subject, f.ours, f.against, f.ratio === undefined ? '' : fmt.ratio(f.ratio), f.target, f.verdict]);
  const widths = head.map((h, i) => Math.min(60, Math.max(h.length, ...rows.map((r) => r[i]!.length))));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function markdownTable(findings: readonly Finding[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const lines = ['| section | what | ours | against | ratio | target | |', '|---|---|---|---|---|---|---|'];
  for (const f of findings) {
    const verdict = f.verdict === 'PASS' || f.verdict === 'MISS' ? `**${f.verdict}**` : f.verdict;
    lines.push(`| ${esc(f.section)} | ${esc(f.subject)} | ${esc(f.ours)} | ${esc(f.against)} | ${f.ratio === undefined ? '' : fmt.ratio(f.ratio)} | ${f.target} | ${verdict} |`);
  }
  return lines.join('\n');
}

export interface RunDescription {
  command: string;
  quick: boolean;
  machine: MachineInfo;
  versions: Record<string, string>;
  wallSeconds: number;
  sections: Record<string, SectionResult>;
}

export const BEGIN = '<!-- bench:begin (written by `npm run bench`; edit outside these markers) -->';
export const END = '<!-- bench:end -->';

export function generatedBlock(run: RunDescription): string {
  const m = run.machine;
  const findings = Object.values(run.sections).flatMap((s) => s.findings);
  const out: string[] = [BEGIN, ''];
  out.push(`Last run: ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, \`${run.command}\`${run.quick ? ' (quick sizes)' : ''}, ${Math.round(run.wallSeconds)} s.`);
  out.push('');
  out.push(`Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}; load average ${m.loadBefore.join(' / ')} before, ${loadavg().map((x) => x.toFixed(2)).join(' / ')} after (1/5/15 min).`);
  out.push('');
  out.push(`Versions: ${Object.entries(run.versions).map(([k, v]) => `${k} ${v}`).join(', ')}.`);
  out.push('');
  out.push(markdownTable(findings));
  for (const [name, section] of Object.entries(run.sections)) {
    if (section.notes.length === 0) continue;
    out.push('', `#### ${name}`, '', ...section.notes);
  }
  out.push('', END);
  return out.join('\n');
}

/** Replaces the generated block of the document (or appends it), keeping everything else. */
export function writeReport(path: string, block: string, skeleton: string): void {
  const current = existsSync(path) ? readFileSync(path, 'utf8') : skeleton;
  const begin = current.indexOf(BEGIN);
  const end = current.indexOf(END);
  const next = begin >= 0 && end > begin ? current.slice(0, begin) + block + current.slice(end + END.length) : `${current.trimEnd()}\n\n${block}\n`;
  writeFileSync(path, next);
}
