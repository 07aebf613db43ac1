import type { ProgressEvent, ProgressSink } from '../progress';
import type { RoundReport, RunReport } from '../round/run-loop';

/**
 * What people see in a terminal: a progress bar on stderr when it is a TTY (one summary line per
 * phase otherwise), and tables. With --json no bar is drawn (`mode` 'lines'): stderr gets only the
 * one-line phase summaries, for logs, and the result goes to stdout as JSON.
 */
export function progressBar(stream: NodeJS.WriteStream = process.stderr, mode: 'auto' | 'lines' | 'off' = 'auto'): ProgressSink & { finish: () => void } {
  const enabled = mode !== 'off';
  let phase = '';
  let started = 0;
  let lastDraw = 0;
  let lastAt = 0;
  let last: ProgressEvent | null = null;
  const tty = mode === 'auto' && stream.isTTY === true;
  const draw = (e: ProgressEvent, final: boolean): void => {
    const elapsed = ((final ? lastAt : performance.now()) - started) / 1000;
    const rate = elapsed > 0 ? e.done / elapsed : 0;
    const metrics = e.metrics ? Object.entries(e.metrics).map(([k, v]) => `${k} ${v.toFixed(3)}`).join('  ') : '';
    const label = `${e.phase}${e.message ? ` (${e.message})` : ''}`;
    if (tty) {
      const width = 24;
      const frac = e.total > 0 ? Math.min(1, e.done / e.total) : 0;
      const filled = Math.round(frac * width);
      const eta = rate > 0 && e.total > e.done ? ` eta ${Math.ceil((e.total - e.done) / rate)}s` : '';
      const line = `${label.padEnd(18)} ${'█'.repeat(filled)}${'░'.repeat(width - filled)} ${e.done}/${e.total} ${rate.toFixed(1)}/s${eta} ${metrics}`;
      stream.write(`\r\x1b[2K${line}${final ? '\n' : ''}`);
    } else if (final) {
      stream.write(`${label}: ${e.done}/${e.total} in ${elapsed.toFixed(1)}s ${metrics}\n`);
    }
  };
  const finish = (): void => {
    if (last && enabled) draw(last, true);
    last = null;
  };
  const sink = (e: ProgressEvent): void => {
    if (!enabled) return;
    if (e.phase !== phase || (e.message ?? '') !== (last?.message ?? '')) {
      finish();
      phase = e.phase;
      started = performance.now();
    }
    last = e;
    const t = performance.now();
    lastAt = t;
    if (t - lastDraw > 100 || e.done === e.total) {
      lastDraw = t;
      if (tty) draw(e, false);
    }
  };
  return Object.assign(sink, { finish });
}

export function renderTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

const pct = (x: number | undefined | null): string => (x === undefined || x === null ? '-' : `${(100 * x).toFixed(1)}%`);
const num = (x: number | null, digits = 3): string => (x === null ? '-' : x.toFixed(digits));

export function renderRunReport(report: RunReport): string {
  const k = Math.max(report.base.evaluation?.refineAt.length ?? 0, ...report.rounds.map((r) => r.evaluation?.refineAt.length ?? 0));
  const keep = report.rounds.some((r) => r.pairs.keep > 0);
  // ARIES inference columns, shown when some evaluation has them: one answer of y0..yK per prompt.
  const evaluations = [report.base.evaluation, ...report.rounds.map((r) => r.evaluation)];
  const rmName = evaluations.find((e) => e?.rmScorer)?.rmScorer;
  const picks = [
    { label: 'rule pick', of: (e: RoundReport['evaluation']) => e?.ruleSelected },
    { label: `${rmName ?? 'rm'} pick`, of: (e: RoundReport['evaluation']) => e?.rmSelected },
    { label: 'oracle', of: (e: RoundReport['evaluation']) => e?.anyCorrect },
  ].filter((c) => evaluations.some((e) => c.of(e) !== undefined));
  const header = ['round', 'model', 'n', 'direct', ...Array.from({ length: k }, (_, i) => `refine@${i + 1}`), ...picks.map((c) => c.label), keep ? 'pairs d/r/k' : 'pairs d/r', 'train loss', 'margin', 'time'];
  const evalCells = (e: RoundReport['evaluation']): string[] => [String(e?.n ?? '-'), pct(e?.direct), ...Array.from({ length: k }, (_, i) => pct(e?.refineAt[i])), ...picks.map((c) => pct(c.of(e)))];
  const rows = [
    ['0', report.base.model, ...evalCells(report.base.evaluation), '-', '-', '-', '-'],
    ...report.rounds.map((r) => [
      String(r.round),
      r.model,
      ...evalCells(r.evaluation),
      `${r.pairs.direct}/${r.pairs.refine}${keep ? `/${r.pairs.keep}` : ''}`,
      num(r.trainLoss),
      num(r.rewardMargin),
      `${Object.values(r.seconds).reduce((a, b) => a + b, 0).toFixed(0)}s`,
    ]),
  ];
  return renderTable(header, rows);
}
