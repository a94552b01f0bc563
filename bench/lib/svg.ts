/**
 * The latency chart, written by hand: one panel per run type (each with its
 * own scale, since saturation latencies and fixed-rate latencies differ by
 * orders of magnitude), grouped bars untraced vs traced per percentile.
 */

export interface ChartPanel {
  title: string;
  /** Percentile name (p50...) with the median latency in ms of each side. */
  bars: Array<{ percentile: string; baseline: number; traced: number }>;
}

const COLORS = { baseline: '#4e79a7', traced: '#e15759' };
const PANEL_W = 460;
const PANEL_H = 280;
const MARGIN = { left: 64, right: 16, top: 34, bottom: 46 };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Axis maximum and step: 1, 2, 2.5 or 5 times a power of ten, about 4-5 ticks. */
export function niceScale(max: number): { top: number; step: number } {
  if (!(max > 0) || !Number.isFinite(max)) return { top: 1, step: 0.25 };
  const raw = max / 4;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * pow).find((s) => s >= raw) ?? 10 * pow;
  return { top: Math.ceil(max / step) * step, step };
}

function label(v: number): string {
  if (!Number.isFinite(v)) return '–';
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  if (v >= 1) return v.toFixed(2);
  return v.toFixed(3).replace(/0+$/, '').replace(/\.$/, '');
}

/** Tick labels with as many decimals as the step needs (0, 2.5, 5 / 0, 0.25, 0.5). */
function tickLabel(v: number, step: number): string {
  let d = 0;
  while (d < 4 && Math.abs(Math.round(step * 10 ** d) - step * 10 ** d) > 1e-6) d++;
  return v.toFixed(d);
}

function panel(p: ChartPanel, x0: number, y0: number): string {
  const w = PANEL_W - MARGIN.left - MARGIN.right;
  const h = PANEL_H - MARGIN.top - MARGIN.bottom;
  const left = x0 + MARGIN.left;
  const top = y0 + MARGIN.top;
  const max = Math.max(0, ...p.bars.flatMap((b) => [b.baseline, b.traced]).filter(Number.isFinite));
  const { top: yMax, step } = niceScale(max * 1.08);
  const y = (v: number): number => top + h - (Math.max(0, v) / yMax) * h;
  const parts: string[] = [];
  parts.push(`<text x="${x0 + PANEL_W / 2}" y="${y0 + 20}" text-anchor="middle" font-size="14" font-weight="bold">${esc(p.title)}</text>`);
  for (let v = 0; v <= yMax + step / 1000; v += step) {
    const yy = y(v).toFixed(1);
    parts.push(`<line x1="${left}" x2="${left + w}" y1="${yy}" y2="${yy}" stroke="#e3e3e3"/>`);
    parts.push(`<text x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" font-size="11">${tickLabel(v, step)}</text>`);
  }
  parts.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${top + h}" stroke="#555"/>`);
  parts.push(`<line x1="${left}" x2="${left + w}" y1="${top + h}" y2="${top + h}" stroke="#555"/>`);
  const cy = top + h / 2;
  parts.push(`<text x="${x0 + 16}" y="${cy}" transform="rotate(-90 ${x0 + 16} ${cy})" text-anchor="middle" font-size="12">latency (ms)</text>`);
  parts.push(`<text x="${left + w / 2}" y="${top + h + 36}" text-anchor="middle" font-size="12">percentile</text>`);
  const groupW = w / Math.max(1, p.bars.length);
  const barW = Math.min(36, groupW * 0.34);
  p.bars.forEach((b, i) => {
    const gx = left + groupW * i + groupW / 2;
    parts.push(`<text x="${gx}" y="${top + h + 18}" text-anchor="middle" font-size="12">${esc(b.percentile)}</text>`);
    (['baseline', 'traced'] as const).forEach((side, j) => {
      const v = b[side];
      const bx = gx - barW - 2 + j * (barW + 4);
      if (!Number.isFinite(v)) return;
      const by = y(v);
      parts.push(`<rect x="${bx.toFixed(1)}" y="${by.toFixed(1)}" width="${barW.toFixed(1)}" height="${(top + h - by).toFixed(1)}" fill="${COLORS[side]}"><title>${side === 'baseline' ? 'untraced' : 'traced'} ${esc(b.percentile)}: ${label(v)} ms</title></rect>`);
      parts.push(`<text x="${(bx + barW / 2).toFixed(1)}" y="${(by - 4).toFixed(1)}" text-anchor="middle" font-size="10" fill="#333">${label(v)}</text>`);
    });
  });
  return parts.join('\n');
}

export function latencySvg(panels: ChartPanel[], subtitle: string): string {
  const cols = panels.length > 1 ? 2 : 1;
  const rows = Math.max(1, Math.ceil(panels.length / cols));
  const headerH = 70;
  const width = cols * PANEL_W + 20;
  const height = headerH + rows * PANEL_H + 10;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" role="img" aria-label="sonde latency: traced vs untraced">`);
  parts.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  parts.push(`<text x="${width / 2}" y="24" text-anchor="middle" font-size="17" font-weight="bold">HTTP latency percentiles, untraced vs traced by sonde (medians of runs)</text>`);
  parts.push(`<text x="${width / 2}" y="42" text-anchor="middle" font-size="11" fill="#555">${esc(subtitle)}</text>`);
  const lx = width / 2 - 110;
  parts.push(`<rect x="${lx}" y="52" width="14" height="12" fill="${COLORS.baseline}"/><text x="${lx + 20}" y="62" font-size="12">untraced (A)</text>`);
  parts.push(`<rect x="${lx + 120}" y="52" width="14" height="12" fill="${COLORS.traced}"/><text x="${lx + 140}" y="62" font-size="12">traced by sonde (B)</text>`);
  if (panels.length === 0) {
    parts.push(`<text x="${width / 2}" y="${headerH + PANEL_H / 2}" text-anchor="middle" font-size="14" fill="#777">no latency data: the worst-case and fixed-rate scenarios did not run</text>`);
  }
  panels.forEach((p, i) => parts.push(panel(p, 10 + (i % cols) * PANEL_W, headerH + Math.floor(i / cols) * PANEL_H)));
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
