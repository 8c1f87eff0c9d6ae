/**
 * Figures as standalone SVG strings (no browser needed), and PNG versions rasterised by sharp's librsvg.
 */
import sharp from 'sharp';
import type { AucInterval, ConfusionCounts, RocCurve } from './metrics.ts';
import type { Axes } from './svg.ts';
import { drawAxes, n, niceTicks, polyline, svgDocument, text, xScale, yScale } from './svg.ts';
import { formatFixed } from './classification-report.ts';

const BLUE = '#1f77b4';
const ORANGE = '#e66100';
const GREY = '#888888';

export interface RocFigureOptions {
  /** Adds the CI to the legend. */
  interval?: Pick<AucInterval, 'low' | 'high' | 'level'>;
  /** Marks the operating point of the decision threshold. */
  operatingPoint?: { fpr: number; tpr: number; threshold: number };
  title?: string;
}

/** ROC curve with the chance diagonal; the AUC (and CI when given) in the legend. 520 x 520 px. */
export function rocFigureSvg(roc: RocCurve, auc: number, options: RocFigureOptions = {}): string {
  const width = 520;
  const height = 520;
  const axes: Axes = { left: 72, top: 44, width: 420, height: 400, xMin: 0, xMax: 1, yMin: 0, yMax: 1 };
  const ticks = niceTicks(0, 1, 5);
  const body = drawAxes(
    axes,
    { x: 'False positive rate (1 − specificity)', y: 'True positive rate (sensitivity)', title: options.title ?? 'ROC curve' },
    { x: ticks, y: ticks },
  );
  body.push(...polyline(axes, [0, 1], [0, 1], { color: GREY, width: 1.5, dash: '6 5' }));
  body.push(...polyline(axes, roc.fpr, roc.tpr, { color: BLUE, width: 2.5 }));

  let aucLabel = `ROC, AUC = ${formatFixed(auc, 3)}`;
  if (options.interval) {
    const { low, high, level } = options.interval;
    aucLabel += ` (${Math.round(level * 100)}% CI ${formatFixed(low, 3)}–${formatFixed(high, 3)})`;
  }
  const legend: Array<{ label: string; color: string; dash?: string; marker?: boolean }> = [
    { label: aucLabel, color: BLUE },
    { label: 'Chance', color: GREY, dash: '6 5' },
  ];
  if (options.operatingPoint) {
    const { fpr, tpr, threshold } = options.operatingPoint;
    const x = xScale(axes, fpr);
    const y = yScale(axes, tpr);
    body.push(`<circle cx="${n(x)}" cy="${n(y)}" r="6" fill="${ORANGE}" stroke="#fff" stroke-width="1.5"/>`);
    legend.push({ label: `Threshold ${formatFixed(threshold, 3)}`, color: ORANGE, marker: true });
  }
  const legendWidth = 300;
  const legendLeft = axes.left + axes.width - legendWidth - 10;
  const legendTop = axes.top + axes.height - 10 - legend.length * 20 - 8;
  body.push(
    `<rect x="${n(legendLeft)}" y="${n(legendTop)}" width="${legendWidth}" height="${legend.length * 20 + 8}" ` +
      `fill="#ffffff" fill-opacity="0.92" stroke="#bbbbbb"/>`,
  );
  legend.forEach((entry, i) => {
    const y = legendTop + 16 + i * 20;
    body.push(
      entry.marker
        ? `<circle cx="${n(legendLeft + 22)}" cy="${n(y - 4)}" r="5" fill="${entry.color}"/>`
        : `<line x1="${n(legendLeft + 8)}" y1="${n(y - 4)}" x2="${n(legendLeft + 36)}" y2="${n(y - 4)}" stroke="${entry.color}" ` +
            `stroke-width="2.5"${entry.dash ? ` stroke-dasharray="${entry.dash}"` : ''}/>`,
    );
    body.push(text(legendLeft + 44, y, entry.label, { anchor: 'start', size: 11.5 }));
  });
  return svgDocument(width, height, body);
}

/** White-to-blue colour for a fraction in [0, 1]. */
function cellColour(fraction: number): string {
  const f = Math.min(1, Math.max(0, fraction));
  const mix = (from: number, to: number) => Math.round(from + (to - from) * f);
  return `rgb(${mix(247, 8)},${mix(251, 69)},${mix(255, 148)})`;
}

/**
 * Confusion matrix, rows = true class, columns = predicted class, as two panels: counts, and row-normalised
 * fractions (per true class, i.e. specificity and sensitivity on the diagonal). 860 x 420 px.
 */
export function confusionMatrixSvg(
  counts: ConfusionCounts,
  classNames: readonly [string, string] = ['Negative', 'Positive'],
  title = 'Confusion matrix',
): string {
  const width = 860;
  const height = 420;
  const matrix = [
    [counts.tn, counts.fp],
    [counts.fn, counts.tp],
  ] as const;
  const rowTotals = matrix.map((row) => row[0] + row[1]);
  const body: string[] = [text(width / 2, 28, title, { size: 16, weight: 'bold' })];
  const cell = 120;
  const panels = [
    { left: 170, subtitle: 'Counts', normalised: false },
    { left: 600, subtitle: 'Normalised by true class', normalised: true },
  ];
  for (const panel of panels) {
    const top = 96;
    body.push(text(panel.left + cell, top - 36, panel.subtitle, { size: 13, weight: 'bold' }));
    body.push(text(panel.left + cell, top + 2 * cell + 52, 'Predicted class', { size: 12 }));
    body.push(text(panel.left - 112, top + cell, 'True class', { size: 12, rotate: -90 }));
    for (let r = 0; r < 2; r++) {
      const total = rowTotals[r]!;
      body.push(text(panel.left - 8, top + r * cell + cell / 2 + 4, classNames[r]!, { anchor: 'end', size: 12 }));
      body.push(text(panel.left + r * cell + cell / 2, top + 2 * cell + 22, classNames[r]!, { size: 12 }));
      for (let c = 0; c < 2; c++) {
        const count = matrix[r]![c]!;
        const fraction = total === 0 ? 0 : count / total;
        const x = panel.left + c * cell;
        const y = top + r * cell;
        const ink = fraction > 0.5 ? '#ffffff' : '#111111';
        body.push(
          `<rect x="${n(x)}" y="${n(y)}" width="${cell}" height="${cell}" fill="${cellColour(fraction)}" stroke="#ffffff" stroke-width="2"/>`,
        );
        const main = panel.normalised ? (total === 0 ? '–' : formatFixed(fraction, 2)) : String(count);
        body.push(text(x + cell / 2, y + cell / 2 + 8, main, { size: 24, weight: 'bold', fill: ink }));
        const sub = panel.normalised ? `${count} / ${total}` : ['TN', 'FP', 'FN', 'TP'][r * 2 + c]!;
        body.push(text(x + cell / 2, y + cell / 2 + 30, sub, { size: 11, fill: ink }));
      }
    }
  }
  return svgDocument(width, height, body);
}

export interface EpochMetrics {
  loss: number;
  accuracy: number;
  /** FP / (FP + TN). */
  typeI: number;
  /** FN / (FN + TP). */
  typeII: number;
}

export interface EpochRecord {
  /** E.g. 1 and 2, or 'pretrain-1'; consecutive epochs with the same phase and round form one segment. */
  phase: string | number;
  round: number;
  epoch: number;
  train: EpochMetrics;
  val?: EpochMetrics;
}

/**
 * Training history: four panels (loss, accuracy, type I error, type II error), train and validation lines over
 * every epoch of every phase in order, with dashed lines at phase boundaries. 1000 x 760 px.
 */
export function trainingHistorySvg(history: readonly EpochRecord[], title = 'Training history'): string {
  const width = 1000;
  const height = 760;
  const body: string[] = [text(width / 2, 26, title, { size: 16, weight: 'bold' })];
  const xs = history.map((_, i) => i + 1);
  const xMin = 0.5;
  const xMax = Math.max(1, history.length) + 0.5;
  const xTicks = niceTicks(1, Math.max(2, history.length), 8).filter((t) => t >= 1 && t <= history.length && Number.isInteger(t));

  // Segments of constant (phase, round), for boundaries and their labels.
  const segments: Array<{ label: string; short: string; start: number; end: number }> = [];
  history.forEach((record, i) => {
    const label = `${typeof record.phase === 'number' ? `phase ${record.phase}` : record.phase} · round ${record.round}`;
    const short = `${typeof record.phase === 'number' ? `P${record.phase}` : record.phase} R${record.round}`;
    const last = segments[segments.length - 1];
    if (last && last.label === label && last.end === i) last.end = i + 1;
    else segments.push({ label, short, start: i, end: i + 1 });
  });

  // Legend
  const legendY = 52;
  for (const [i, entry] of [
    { label: 'train', color: BLUE, dash: undefined },
    { label: 'validation', color: ORANGE, dash: '7 4' },
    { label: 'phase boundary', color: GREY, dash: '3 3' },
  ].entries()) {
    const x = width / 2 - 230 + i * 160;
    body.push(
      `<line x1="${x}" y1="${legendY - 4}" x2="${x + 30}" y2="${legendY - 4}" stroke="${entry.color}" stroke-width="2.5"` +
        `${entry.dash ? ` stroke-dasharray="${entry.dash}"` : ''}/>`,
    );
    body.push(text(x + 38, legendY, entry.label, { anchor: 'start', size: 12 }));
  }

  const panels: Array<{ key: keyof EpochMetrics; title: string }> = [
    { key: 'loss', title: 'Loss' },
    { key: 'accuracy', title: 'Accuracy' },
    { key: 'typeI', title: 'Type I error (FP / (FP + TN))' },
    { key: 'typeII', title: 'Type II error (FN / (FN + TP))' },
  ];
  panels.forEach(({ key, title: panelTitle }, index) => {
    const trainValues = history.map((r) => r.train[key]);
    const valValues = history.map((r) => (r.val ? r.val[key] : NaN));
    let yMax = 1;
    if (key === 'loss') {
      const finite = [...trainValues, ...valValues].filter(Number.isFinite);
      yMax = finite.length === 0 ? 1 : Math.max(...finite, 1e-6);
    }
    const yTicks = niceTicks(0, yMax, 5);
    const axes: Axes = {
      left: 90 + (index % 2) * 480,
      top: 110 + Math.floor(index / 2) * 330,
      width: 380,
      height: 230,
      xMin,
      xMax,
      yMin: 0,
      yMax: yTicks[yTicks.length - 1]!,
    };
    body.push(...drawAxes(axes, { x: 'Epoch (all phases)', y: panelTitle.split(' (')[0]!, title: panelTitle, titleGap: 24 }, { x: xTicks, y: yTicks }));
    segments.forEach((segment, s) => {
      if (s > 0) {
        const x = xScale(axes, segment.start + 0.5);
        body.push(
          `<line x1="${n(x)}" y1="${n(axes.top)}" x2="${n(x)}" y2="${n(axes.top + axes.height)}" stroke="${GREY}" stroke-width="1.2" stroke-dasharray="3 3"/>`,
        );
      }
      // Segment labels sit between the panel title and the frame; short segments get the short form.
      const centre = xScale(axes, (segment.start + segment.end + 1) / 2);
      const room = ((segment.end - segment.start) / (xMax - xMin)) * axes.width;
      const label = segment.label.length * 5.4 < room ? segment.label : segment.short.length * 5.4 < room ? segment.short : '';
      if (label) body.push(text(centre, axes.top - 5, label, { size: 9.5, fill: '#555' }));
    });
    body.push(...polyline(axes, xs, trainValues, { color: BLUE, width: 2 }));
    body.push(...polyline(axes, xs, valValues, { color: ORANGE, width: 2, dash: '7 4' }));
  });
  return svgDocument(width, height, body);
}

/** Rasterises an SVG string to PNG with sharp (librsvg); `density` 72 keeps the SVG's pixel size. */
export async function svgToPng(svg: string, density = 72): Promise<Buffer> {
  return sharp(Buffer.from(svg), { density }).png().toBuffer();
}
