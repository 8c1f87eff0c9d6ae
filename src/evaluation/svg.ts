/** Small building blocks for SVG figures written as strings (internal to src/evaluation). */

export const FONT = "font-family=\"DejaVu Sans, Arial, Helvetica, sans-serif\"";

/** Escapes text for XML/HTML content and attribute values. */
export function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** Rounds coordinates so the SVG stays short and diff-stable. */
export function n(value: number): string {
  return String(Math.round(value * 100) / 100);
}

/** About `count` evenly spaced round tick values covering [min, max] (1, 2, 2.5 or 5 times a power of ten). */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!(max > min)) max = min + 1;
  const raw = (max - min) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  const first = Math.floor(min / step + 1e-9) * step;
  const ticks: number[] = [];
  for (let v = first; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks[ticks.length - 1]! < max - step * 1e-9) ticks.push(Number((first + ticks.length * step).toPrecision(12)));
  return ticks;
}

export function tickLabel(value: number): string {
  return String(Number(value.toPrecision(6)));
}

export function text(
  x: number,
  y: number,
  content: string,
  attributes: { size?: number; anchor?: 'start' | 'middle' | 'end'; weight?: string; fill?: string; rotate?: number } = {},
): string {
  const { size = 12, anchor = 'middle', weight = 'normal', fill = '#222', rotate } = attributes;
  const transform = rotate === undefined ? '' : ` transform="rotate(${rotate} ${n(x)} ${n(y)})"`;
  return (
    `<text x="${n(x)}" y="${n(y)}" font-size="${size}" text-anchor="${anchor}" font-weight="${weight}" ` +
    `fill="${fill}"${transform}>${escapeXml(content)}</text>`
  );
}

export function svgDocument(width: number, height: number, body: string[]): string {
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT}>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    ...body,
    `</svg>`,
    '',
  ].join('\n');
}

export interface Axes {
  left: number;
  top: number;
  width: number;
  height: number;
  xMin: number;
  xMax: number;
  yMin: number;
  yMax: number;
}

export function xScale(axes: Axes, value: number): number {
  return axes.left + ((value - axes.xMin) / (axes.xMax - axes.xMin)) * axes.width;
}

export function yScale(axes: Axes, value: number): number {
  return axes.top + axes.height - ((value - axes.yMin) / (axes.yMax - axes.yMin)) * axes.height;
}

/** Frame, grid, ticks and axis labels of one panel. */
export function drawAxes(
  axes: Axes,
  labels: { x: string; y: string; title?: string; titleGap?: number },
  ticks: { x: number[]; y: number[] },
): string[] {
  const out: string[] = [];
  const bottom = axes.top + axes.height;
  for (const t of ticks.y) {
    const y = yScale(axes, t);
    out.push(`<line x1="${n(axes.left)}" y1="${n(y)}" x2="${n(axes.left + axes.width)}" y2="${n(y)}" stroke="#e4e4e4" stroke-width="1"/>`);
    out.push(`<line x1="${n(axes.left - 5)}" y1="${n(y)}" x2="${n(axes.left)}" y2="${n(y)}" stroke="#444" stroke-width="1"/>`);
    out.push(text(axes.left - 8, y + 4, tickLabel(t), { anchor: 'end', size: 11 }));
  }
  for (const t of ticks.x) {
    const x = xScale(axes, t);
    out.push(`<line x1="${n(x)}" y1="${n(axes.top)}" x2="${n(x)}" y2="${n(bottom)}" stroke="#f0f0f0" stroke-width="1"/>`);
    out.push(`<line x1="${n(x)}" y1="${n(bottom)}" x2="${n(x)}" y2="${n(bottom + 5)}" stroke="#444" stroke-width="1"/>`);
    out.push(text(x, bottom + 18, tickLabel(t), { size: 11 }));
  }
  out.push(
    `<rect x="${n(axes.left)}" y="${n(axes.top)}" width="${n(axes.width)}" height="${n(axes.height)}" fill="none" stroke="#444" stroke-width="1"/>`,
  );
  out.push(text(axes.left + axes.width / 2, bottom + 38, labels.x, { size: 12 }));
  out.push(text(axes.left - 44, axes.top + axes.height / 2, labels.y, { size: 12, rotate: -90 }));
  if (labels.title) out.push(text(axes.left + axes.width / 2, axes.top - (labels.titleGap ?? 10), labels.title, { size: 14, weight: 'bold' }));
  return out;
}

export interface LineStyle {
  color: string;
  width?: number;
  dash?: string;
}

/** A polyline through the finite points; non-finite values break the line, lone points become dots. */
export function polyline(axes: Axes, xs: readonly number[], ys: readonly number[], style: LineStyle): string[] {
  const segments: Array<Array<[number, number]>> = [[]];
  xs.forEach((x, i) => {
    const y = ys[i];
    if (y === undefined || !Number.isFinite(y) || !Number.isFinite(x)) {
      if (segments[segments.length - 1]!.length > 0) segments.push([]);
      return;
    }
    segments[segments.length - 1]!.push([xScale(axes, x), yScale(axes, y)]);
  });
  const dash = style.dash ? ` stroke-dasharray="${style.dash}"` : '';
  const width = style.width ?? 2;
  return segments
    .filter((points) => points.length > 0)
    .map((points) =>
      points.length === 1
        ? `<circle cx="${n(points[0]![0])}" cy="${n(points[0]![1])}" r="${n(width + 1)}" fill="${style.color}"/>`
        : `<polyline points="${points.map(([x, y]) => `${n(x)},${n(y)}`).join(' ')}" fill="none" ` +
          `stroke="${style.color}" stroke-width="${width}" stroke-linejoin="round"${dash}/>`,
    );
}
