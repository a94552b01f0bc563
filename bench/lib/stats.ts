/** Medians and spreads over repeated runs. */

export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function median(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

export function spread(values: number[]): Spread {
  const v = values.filter((x) => Number.isFinite(x));
  if (v.length === 0) return { median: NaN, min: NaN, max: NaN, n: 0 };
  return { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length };
}

/** traced / untraced, NaN when either side is missing or the baseline is 0. */
export function ratio(traced: number, baseline: number): number {
  if (!Number.isFinite(traced) || !Number.isFinite(baseline) || baseline === 0) return NaN;
  return traced / baseline;
}

export interface Comparison {
  baseline: Spread;
  traced: Spread;
  /** median(traced) / median(baseline). */
  ratio: number;
  /** traced_i / baseline_i for each A/B pair: drift between pairs cancels out. */
  pairRatios: Spread;
}

export function compare(baseline: number[], traced: number[]): Comparison {
  const pairs: number[] = [];
  for (let i = 0; i < Math.min(baseline.length, traced.length); i++) pairs.push(ratio(traced[i], baseline[i]));
  return { baseline: spread(baseline), traced: spread(traced), ratio: ratio(median(traced), median(baseline)), pairRatios: spread(pairs) };
}

/** JSON has no NaN: replace non-finite numbers by null when serializing. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? null : value;
}
