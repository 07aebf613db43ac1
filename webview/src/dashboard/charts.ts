import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { el } from '../shared/bridge';

/** Line charts with uPlot, coloured from VS Code's chart palette so every theme reads. */
const PALETTE = ['--vscode-charts-blue', '--vscode-charts-green', '--vscode-charts-orange', '--vscode-charts-purple', '--vscode-charts-red', '--vscode-charts-yellow'];

export function themeColor(variable: string, fallback: string): string {
  return getComputedStyle(document.body).getPropertyValue(variable).trim() || fallback;
}

export interface SeriesSpec {
  label: string;
  values: (number | null)[];
  dash?: boolean;
}

export function lineChart(title: string, xLabel: string, x: number[], series: SeriesSpec[], yFormat: (v: number) => string = (v) => String(v)): HTMLElement {
  const box = el('figure', 'chart');
  box.append(el('figcaption', '', title));
  const plotHost = el('div', 'plot');
  box.append(plotHost);
  if (x.length === 0 || series.length === 0 || series.every((s) => s.values.every((v) => v === null))) {
    plotHost.append(el('p', 'muted', 'no data yet'));
    return box;
  }
  const axis = themeColor('--vscode-descriptionForeground', '#888');
  const grid = themeColor('--vscode-widget-border', 'rgba(128,128,128,0.2)') || 'rgba(128,128,128,0.2)';
  const opts: uPlot.Options = {
    width: 420,
    height: 220,
    scales: { x: { time: false } },
    axes: [
      // Rounds and steps are whole numbers: no 0.5 ticks.
      { label: xLabel, stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000], values: (_u, vals) => vals.map((v) => String(v)) },
      { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, values: (_u, vals) => vals.map((v) => yFormat(v)) },
    ],
    series: [
      { label: xLabel },
      ...series.map((s, i) => {
        const color = themeColor(PALETTE[i % PALETTE.length] as string, '#3794ff');
        return { label: s.label, stroke: color, width: 2, dash: s.dash ? [6, 4] : undefined, points: { show: true, size: 5, fill: color }, spanGaps: true } as uPlot.Series;
      }),
    ],
    legend: { show: true },
  };
  const data = [x, ...series.map((s) => s.values)] as uPlot.AlignedData;
  // uPlot needs the element in the document to measure; mount after insertion.
  requestAnimationFrame(() => {
    const width = Math.max(300, Math.min(560, plotHost.clientWidth || 420));
    new uPlot({ ...opts, width }, data, plotHost);
  });
  return box;
}
