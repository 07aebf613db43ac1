/** How a chart's values read: fractions shown as percentages, or plain numbers. */
export type ValueFormat = 'percent' | 'number';

/**
 * Axis tick labels with the fewest decimals that show every tick exactly, so no two ticks read
 * the same (ticks 11, 11.5, 12 were "11, 11, 12" with a fixed toFixed(0)).
 */
export function tickLabels(values: number[], format: ValueFormat): string[] {
  const scale = format === 'percent' ? 100 : 1;
  const scaled = values.map((v) => v * scale);
  let decimals = 0;
  while (decimals < 4 && scaled.some((v) => Math.abs(v - Number(v.toFixed(decimals))) > 1e-6 * Math.max(1, Math.abs(v)))) decimals++;
  return scaled.map((v) => {
    const text = v.toFixed(decimals);
    return `${/^-0(\.0*)?$/.test(text) ? text.slice(1) : text}${format === 'percent' ? '%' : ''}`;
  });
}

