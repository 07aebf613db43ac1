import '@vscode-elements/elements/dist/vscode-button/index.js';
import '../shared/base.css';
import './style.css';
import { el, HostBridge } from '../shared/bridge';
import { lineChart } from './charts';
import type { DashboardData, DashboardNotification, DashboardRequests } from './protocol';

/** The round dashboard: accuracy by round, training curves, length-bias monitor, pairs and overrides. */
const host = new HostBridge<DashboardRequests, DashboardNotification>();
const app = document.getElementById('app') as HTMLElement;
const pct = (v: number): string => `${(100 * v).toFixed(0)}%`;
const fmt = (v: number | null | undefined, digits = 1): string => (v === null || v === undefined ? '–' : v.toFixed(digits));

function render(d: DashboardData): void {
  const header = el('div', 'dash-header');
  const refresh = document.createElement('vscode-button');
  refresh.setAttribute('secondary', '');
  refresh.textContent = 'Refresh';
  refresh.addEventListener('click', () => void load());
  header.append(el('h2', '', 'ARIES rounds'), refresh);
  if (d.rounds.length === 0 && !d.base.evaluation) {
    app.replaceChildren(header, el('p', 'muted', 'No rounds yet. Run "ARIES: Run Full Round" to collect, train and evaluate one.'));
    return;
  }
  const evals = [d.base.evaluation, ...d.rounds.map((r) => r.evaluation)];
  const x = evals.map((_, i) => i);
  const k = Math.max(0, ...evals.map((e) => e?.refineAt.length ?? 0));
  const accuracy = lineChart('Held-out accuracy by round (0 = starting model)', 'round', x, [
    { label: 'direct', values: evals.map((e) => e?.direct ?? null) },
    ...Array.from({ length: k }, (_, i) => ({ label: `refine@${i + 1}`, values: evals.map((e) => e?.refineAt[i] ?? null), dash: i < k - 1 })),
  ], 'percent');
  const charts = el('div', 'charts');
  charts.append(accuracy);
  const trained = d.rounds.filter((r) => r.training.length);
  const maxStep = Math.max(0, ...trained.map((r) => r.training.length ? (r.training[r.training.length - 1]?.step ?? 0) : 0));
  const steps = Array.from({ length: maxStep }, (_, i) => i + 1);
  const curve = (pick: (p: RoundPoint) => number | null) => trained.map((r) => {
    const byStep = new Map(r.training.map((p) => [p.step, pick(p)]));
    return { label: `round ${r.round}`, values: steps.map((s) => byStep.get(s) ?? null) };
  });
  charts.append(
    lineChart('Training loss', 'step', steps, curve((p) => p.loss)),
    lineChart('Reward margin (rewards/margins)', 'step', steps, curve((p) => p.margin)),
    lineChart('Reward accuracy (rewards/accuracies)', 'step', steps, curve((p) => p.accuracy), 'percent'),
  );
  const rx = d.rounds.map((r) => r.round);
  charts.append(lineChart('Length bias: mean characters of chosen vs rejected', 'round', rx, [
    { label: 'chosen', values: d.rounds.map((r) => r.lengths.chosen) },
    { label: 'rejected', values: d.rounds.map((r) => r.lengths.rejected) },
  ]));
  const maxIdx = Math.max(0, ...d.rounds.map((r) => r.lengths.byStep.length));
  charts.append(lineChart('Answer length by refinement step (collected trajectories)', 'step', Array.from({ length: maxIdx }, (_, i) => i), d.rounds.map((r) => ({ label: `round ${r.round}`, values: Array.from({ length: maxIdx }, (_, i) => r.lengths.byStep[i] ?? null) }))));

  const table = el('table', 'rounds-table');
  const head = el('tr');
  const keepRows = d.rounds.some((r) => (r.exported?.keep ?? 0) > 0);
  for (const h of ['round', 'status', 'model', 'direct', `refine@${k || 'K'}`, keepRows ? 'rows direct / refine / keep' : 'pairs direct / refine', 'by strategy', 'override rate', 'chosen / rejected length']) head.append(el('th', '', h));
  table.append(head);
  const base = el('tr');
  base.append(el('td', '', '0'), el('td', '', 'start'), el('td', '', d.base.model), el('td', '', d.base.evaluation ? pct(d.base.evaluation.direct) : '–'), el('td', '', d.base.evaluation?.refineAt.length ? pct(d.base.evaluation.refineAt[d.base.evaluation.refineAt.length - 1] as number) : '–'), el('td', '', ''), el('td', '', ''), el('td', '', ''), el('td', '', ''));
  table.append(base);
  for (const r of d.rounds) {
    const row = el('tr');
    const e = r.evaluation;
    const strategies = r.exported ? Object.entries(r.exported.byStrategy).map(([s, n]) => `${s} ${n}`).join(', ') : '–';
    row.append(
      el('td', '', String(r.round)), el('td', '', r.status), el('td', '', r.trainedModel ?? r.policyModel),
      el('td', '', e ? pct(e.direct) : '–'), el('td', '', e?.refineAt.length ? pct(e.refineAt[e.refineAt.length - 1] as number) : '–'),
      el('td', '', r.exported ? `${r.exported.direct} / ${r.exported.refine}${keepRows ? ` / ${r.exported.keep}` : ''}` : '–'), el('td', '', strategies),
      el('td', '', r.overrideRate === null ? '–' : `${pct(r.overrideRate)} (${r.overridden}/${r.trajectories})`),
      el('td', '', `${fmt(r.lengths.chosen, 0)} / ${fmt(r.lengths.rejected, 0)}`),
    );
    table.append(row);
  }
  const note = el('p', 'muted small', 'Self-refinement tends to make answers longer: read win rates against the length columns and charts (length-controlled), not alone.');
  app.replaceChildren(header, table, note, charts);
}

type RoundPoint = DashboardData['rounds'][number]['training'][number];

let shown: DashboardData | null = null;

async function load(): Promise<void> {
  try {
    shown = await host.request('data', {});
    render(shown);
  } catch (err) {
    app.replaceChildren(el('p', 'message error', (err as Error).message));
  }
}

// The charts are canvases painted with the theme's colours of the moment: draw them again when
// VS Code changes the theme (the body's vscode-light / vscode-dark class, the variables on <html>).
let redraw = 0;
const themeChanged = new MutationObserver(() => {
  cancelAnimationFrame(redraw);
  redraw = requestAnimationFrame(() => {
    if (shown) render(shown);
  });
});
themeChanged.observe(document.documentElement, { attributes: true, attributeFilter: ['style', 'class'] });
themeChanged.observe(document.body, { attributes: true, attributeFilter: ['class'] });

host.onNotification(() => void load());
host.ready();
