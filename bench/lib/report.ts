/**
 * The terminal report: one table per scenario (medians with min–max, the
 * traced/untraced ratio, the target next to it and whether it was met), then
 * the list of targets and anything odd seen on the way.
 */
import type { Spread } from './stats';

export type Verdict = 'met' | 'MISSED' | 'n/a' | '';

export interface Row {
  metric: string;
  baseline?: Spread | string;
  traced?: Spread | string;
  ratio?: number | string;
  target?: string;
  verdict?: Verdict;
}

export interface Section {
  title: string;
  /** Column titles, when the default (metric, untraced, traced, ratio, target, verdict) does not fit. */
  headers?: string[];
  rows: Row[];
  notes: string[];
}

export interface TargetCheck {
  scenario: string;
  target: string;
  value: string;
  verdict: Verdict;
}

/** A number with as many digits as its size deserves. */
export function fmt(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return '–';
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString('en-US');
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  if (a === 0) return '0';
  return String(Number(x.toPrecision(3)));
}

export function fmtSpread(s: Spread | string | undefined): string {
  if (s === undefined) return '';
  if (typeof s === 'string') return s;
  if (s.n === 0) return '–';
  if (s.n === 1 || s.min === s.max) return fmt(s.median);
  return `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`;
}

export function fmtRatio(r: number | string | undefined): string {
  if (r === undefined) return '';
  if (typeof r === 'string') return r;
  return Number.isFinite(r) ? r.toFixed(3) : '–';
}

const HEADERS = ['metric', 'untraced: median (min–max)', 'traced: median (min–max)', 'ratio B/A', 'target', 'verdict'];

export function renderSection(section: Section): string {
  const cells = section.rows.map((r) => [r.metric, fmtSpread(r.baseline), fmtSpread(r.traced), fmtRatio(r.ratio), r.target ?? '', r.verdict ?? '']);
  const headers = section.headers ?? HEADERS;
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]): string =>
    c
      .map((v, i) => (i === 0 || i >= 4 ? v.padEnd(widths[i]) : v.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  const out = [`== ${section.title}`, line(headers), rule, ...cells.map(line)];
  for (const n of section.notes) out.push(`   ${n}`);
  return out.join('\n');
}

export function renderTargets(targets: TargetCheck[]): string {
  if (targets.length === 0) return '';
  const w0 = Math.max(...targets.map((t) => t.scenario.length));
  const w1 = Math.max(...targets.map((t) => t.target.length));
  const w2 = Math.max(...targets.map((t) => t.value.length));
  const lines = targets.map((t) => `  ${t.verdict.padEnd(6)}  ${t.scenario.padEnd(w0)}  ${t.target.padEnd(w1)}  ${t.value.padEnd(w2)}`.trimEnd());
  return ['== targets', ...lines].join('\n');
}

export function verdict(ok: boolean | undefined): Verdict {
  return ok === undefined ? 'n/a' : ok ? 'met' : 'MISSED';
}
