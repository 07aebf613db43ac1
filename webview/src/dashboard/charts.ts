import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { el } from '../shared/bridge';
import { tickLabels, type ValueFormat } from './ticks';

/**
 * Line charts with uPlot, coloured from VS Code's chart palette so every theme reads. uPlot draws
 * on a canvas with colours read once, so the dashboard draws its charts again when the theme
 * changes (main.ts).
 */
const PALETTE = ['--vscode-charts-blue', '--vscode-charts-green', '--vscode-charts-orange', '--vscode-charts-purple', '--vscode-charts-red', '--vscode-charts-yellow'];

export function themeColor(variable: string, fallback: string): string {
  return getComputedStyle(document.body).getPropertyValue(variable).trim() || fallback;
}

export interface SeriesSpec {
  label: string;
  values: (number | null)[];
  dash?: boolean;
}

const measure = document.createElement('canvas').getContext('2d');

/** Room for the widest tick label (uPlot's fixed 50 px cut "100.00" and "100%" to "00.00" and "00%"). */
function axisSize(font: string): uPlot.Axis.Size {
  return (_u, values) => {
    if (!values?.length || !measure) return 50;
    measure.font = font;
    return Math.ceil(Math.max(...values.map((v) => measure.measureText(String(v)).width))) + 22;
  };
}

export function lineChart(title: string, xLabel: string, x: number[], series: SeriesSpec[], format: ValueFormat = 'number'): HTMLElement {
  const box = el('figure', 'chart');
  box.append(el('figcaption', '', title));
  const plotHost = el('div', 'plot');
  box.append(plotHost);
  if (x.length === 0 || series.length === 0 || series.every((s) => s.values.every((v) => v === null))) {
    plotHost.append(el('p', 'muted', 'no data yet'));
    return box;
  }
  const axis = themeColor('--vscode-descriptionForeground', '#888');
  const grid = themeColor('--vscode-widget-border', '') || themeColor('--vscode-panel-border', 'rgba(128,128,128,0.25)');
  const family = themeColor('--vscode-font-family', 'system-ui, sans-serif');
  const font = `12px ${family}`;
  const opts: uPlot.Options = {
    width: 420,
    height: 220,
    scales: {
      x: { time: false },
      // Accuracies are fractions: 0–100 %, never "500 %" on a flat line. Other values: their range,
      // or ±1 around a single value (uPlot's default made 0 look like a point on a 0–100 scale).
      y: { range: format === 'percent' ? [0, 1] : (_u, min, max) => (min === max ? [min - 1, max + 1] : uPlot.rangeNum(min, max, 0.1, true)) },
    },
    axes: [
      // Rounds and steps are whole numbers: no 0.5 ticks.
      { label: xLabel, stroke: axis, font, labelFont: `600 12px ${family}`, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000], values: (_u, vals) => vals.map((v) => String(v)) },
      { stroke: axis, font, size: axisSize(font), grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, values: (_u, vals) => tickLabels(vals, format) },
    ],
    series: [
      { label: xLabel },
      ...series.map((s, i) => {
        const color = themeColor(PALETTE[i % PALETTE.length] as string, '#3794ff');
        return { label: s.label, stroke: color, width: 2, dash: s.dash ? [6, 4] : undefined, points: { show: true, size: 5, fill: color }, spanGaps: true } as uPlot.Series;
      }),
    ],
    // A key of the series, without uPlot's live values ("--" until the pointer is over the plot).
    legend: { show: true, live: false },
  };
  const data = [x, ...series.map((s) => s.values)] as uPlot.AlignedData;
  // uPlot needs the element in the document to measure; mount after insertion.
  requestAnimationFrame(() => {
    const width = Math.max(300, Math.min(560, plotHost.clientWidth || 420));
    new uPlot({ ...opts, width }, data, plotHost);
  });
  return box;
}
