/**
 * The evaluation report: one self-contained report.html (every image a data: URI, inline CSS, no scripts, so it
 * opens offline) and metrics.json, plus the figures as SVG and PNG files.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import sharp from 'sharp';
import { decodeImage } from '../data/decode.ts';
import type { Evaluation, Outcome, ScoredPrediction } from './evaluate.ts';
import { evaluationToJson, galleryExamples } from './evaluate.ts';
import { formatFixed } from './classification-report.ts';
import type { EpochRecord } from './plots.ts';
import { confusionMatrixSvg, rocFigureSvg, svgToPng, trainingHistorySvg } from './plots.ts';
import { escapeXml as escapeHtml } from './svg.ts';

export const DISCLAIMER = 'Research software, not a diagnostic device.';
export const THUMBNAIL_SIZE = 128;

/** A section of report.html: a heading and ready (escaped) HTML, placed after the ROC curve. */
export interface ReportSection {
  id: string;
  heading: string;
  html: string;
}

/** A thumbnail as bytes of a browser-readable image (JPEG by default), or a ready data: URI. */
export type Thumbnail = Buffer | string;

export interface ReportOptions {
  title?: string;
  /** Key-value lines shown under the title (model directory, backbone, dataset...). */
  details?: Record<string, string>;
  /** Per-epoch training records; adds the training-history figure. */
  history?: readonly EpochRecord[];
  /** Makes a thumbnail for a gallery image; default `makeThumbnail(record.path)`. */
  thumbnail?: (record: ScoredPrediction) => Promise<Thumbnail>;
  /** Ready thumbnails by image path; takes precedence over `thumbnail`. */
  thumbnails?: ReadonlyMap<string, Thumbnail>;
  /** Examples per gallery (default 9). */
  galleryLimit?: number;
  generatedAt?: Date;
  /** More fields for metrics.json (structured, unlike `details`). */
  extra?: Record<string, unknown>;
  /** More sections (e.g. patient level, per source), after the ROC curve. */
  sections?: readonly ReportSection[];
}

/** A JPEG thumbnail fitting in size x size, from any image file the data pipeline can decode (PNG, JPEG, BMP...). */
export async function makeThumbnail(path: string, size = THUMBNAIL_SIZE): Promise<Buffer> {
  const image = await decodeImage(path);
  return sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .resize(size, size, { fit: 'inside' })
    .jpeg({ quality: 80 })
    .toBuffer();
}

function mimeOf(bytes: Buffer): string {
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return 'image/jpeg';
  if (bytes[0] === 0x89 && bytes[1] === 0x50) return 'image/png';
  if (bytes.subarray(0, 4).toString('latin1') === 'RIFF') return 'image/webp';
  if (bytes.subarray(0, 3).toString('latin1') === 'GIF') return 'image/gif';
  if (bytes.subarray(0, 200).toString('utf8').includes('<svg')) return 'image/svg+xml';
  throw new Error('thumbnail is not a JPEG, PNG, WebP, GIF or SVG image');
}

export function dataUri(bytes: Buffer, mime = mimeOf(bytes)): string {
  return `data:${mime};base64,${bytes.toString('base64')}`;
}

function svgDataUri(svg: string): string {
  return dataUri(Buffer.from(svg, 'utf8'), 'image/svg+xml');
}

const GALLERIES: Array<{ outcome: Outcome; id: string; heading: string; order: string }> = [
  { outcome: 'TP', id: 'true-positives', heading: 'True positives', order: 'highest probability first' },
  { outcome: 'TN', id: 'true-negatives', heading: 'True negatives', order: 'lowest probability first' },
  { outcome: 'FP', id: 'false-positives', heading: 'False positives', order: 'most confident mistakes first' },
  { outcome: 'FN', id: 'false-negatives', heading: 'False negatives', order: 'most confident mistakes first' },
];

const CSS = `
body { font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; margin: 0; color: #1d1d1d; background: #fafafa; }
main { max-width: 1080px; margin: 0 auto; padding: 0 20px 40px; }
.banner { background: #8a1c1c; color: #fff; font-weight: bold; text-align: center; padding: 10px; font-size: 16px; }
h1 { margin: 22px 0 6px; } h2 { margin-top: 36px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
dl.details { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; color: #444; font-size: 14px; }
dl.details dt { font-weight: bold; } dl.details dd { margin: 0; overflow-wrap: anywhere; }
.headline { display: flex; flex-wrap: wrap; gap: 12px; margin: 18px 0; }
.card { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 10px 16px; min-width: 150px; }
.card .value { font-size: 26px; font-weight: bold; } .card .label { color: #555; font-size: 13px; }
.card .sub { color: #555; font-size: 12px; }
img.figure { max-width: 100%; height: auto; background: #fff; border: 1px solid #eee; }
pre { background: #fff; border: 1px solid #ddd; padding: 12px; overflow-x: auto; }
table { border-collapse: collapse; background: #fff; }
th, td { border: 1px solid #ddd; padding: 4px 10px; text-align: right; } th:first-child, td:first-child { text-align: left; }
.gallery { display: flex; flex-wrap: wrap; gap: 10px; }
.gallery figure { margin: 0; width: 140px; background: #fff; border: 1px solid #ddd; padding: 5px; font-size: 11.5px; }
.gallery img { display: block; margin: 0 auto; max-width: 128px; max-height: 128px; }
.gallery figcaption { overflow-wrap: anywhere; margin-top: 4px; }
.missing { width: 128px; height: 128px; display: flex; align-items: center; justify-content: center; background: #eee;
  color: #8a1c1c; text-align: center; font-size: 11px; margin: 0 auto; overflow: hidden; }
.note { color: #555; font-size: 13px; }
`;

function card(label: string, value: string, sub = ''): string {
  return (
    `<div class="card"><div class="label">${escapeHtml(label)}</div><div class="value">${escapeHtml(value)}</div>` +
    (sub ? `<div class="sub">${escapeHtml(sub)}</div>` : '') +
    `</div>`
  );
}

function reportTable(evaluation: Evaluation): string {
  const { report } = evaluation;
  const f = (v: number) => escapeHtml(formatFixed(v, 2));
  const rows = report.classes.map(
    (r) => `<tr><td>${escapeHtml(r.name)}</td><td>${f(r.precision)}</td><td>${f(r.recall)}</td><td>${f(r.f1)}</td><td>${r.support}</td></tr>`,
  );
  rows.push(`<tr><td>accuracy</td><td></td><td></td><td>${f(report.accuracy)}</td><td>${evaluation.size}</td></tr>`);
  for (const [name, r] of [
    ['macro avg', report.macroAvg],
    ['weighted avg', report.weightedAvg],
  ] as const) {
    rows.push(`<tr><td>${name}</td><td>${f(r.precision)}</td><td>${f(r.recall)}</td><td>${f(r.f1)}</td><td>${r.support}</td></tr>`);
  }
  return (
    `<table class="classification-report"><thead><tr><th></th><th>precision</th><th>recall</th><th>f1-score</th>` +
    `<th>support</th></tr></thead><tbody>${rows.join('')}</tbody></table>`
  );
}

async function thumbnailUri(record: ScoredPrediction, options: ReportOptions): Promise<string> {
  const ready = options.thumbnails?.get(record.path);
  const thumbnail = ready ?? (await (options.thumbnail ?? ((r: ScoredPrediction) => makeThumbnail(r.path)))(record));
  if (typeof thumbnail === 'string') {
    if (!thumbnail.startsWith('data:image/')) throw new Error('a ready thumbnail string must be a data:image/ URI');
    return thumbnail;
  }
  return dataUri(thumbnail);
}

async function gallery(evaluation: Evaluation, options: ReportOptions): Promise<string> {
  const limit = options.galleryLimit ?? 9;
  const [negative, positive] = evaluation.classNames;
  const sections = await Promise.all(
    GALLERIES.map(async ({ outcome, id, heading, order }) => {
      const total = evaluation.predictions.filter((p) => p.outcome === outcome).length;
      const examples = galleryExamples(evaluation.predictions, outcome, limit);
      const figures = await Promise.all(
        examples.map(async (example) => {
          let image: string;
          try {
            image = `<img src="${escapeHtml(await thumbnailUri(example, options))}" alt="${escapeHtml(basename(example.path))}">`;
          } catch (error) {
            // One unreadable file should not cost the whole report.
            image = `<div class="missing">image unavailable: ${escapeHtml((error as Error).message)}</div>`;
          }
          const truth = example.label === 1 ? positive : negative;
          return (
            `<figure>${image}<figcaption><b>p = ${escapeHtml(formatFixed(example.probability, 3))}</b><br>` +
            `true: ${escapeHtml(truth)}<br><span title="${escapeHtml(example.path)}">${escapeHtml(basename(example.path))}</span>` +
            `</figcaption></figure>`
          );
        }),
      );
      const shown = examples.length === 0 ? 'none' : `${examples.length} of ${total} shown, ${order}`;
      return (
        `<section id="${id}"><h3>${heading} (${outcome}): ${escapeHtml(shown)}</h3>` +
        `<div class="gallery">${figures.join('')}</div></section>`
      );
    }),
  );
  return sections.join('\n');
}

export interface ReportFigures {
  rocSvg: string;
  confusionSvg: string;
  historySvg?: string;
}

/** The figures of a report as SVG strings. */
export function reportFigures(evaluation: Evaluation, history?: readonly EpochRecord[]): ReportFigures {
  const { metrics } = evaluation;
  return {
    rocSvg: rocFigureSvg(evaluation.roc, evaluation.auc.auc, {
      interval: evaluation.auc,
      operatingPoint: { fpr: metrics.typeI, tpr: metrics.sensitivity, threshold: evaluation.threshold },
    }),
    confusionSvg: confusionMatrixSvg(metrics, evaluation.classNames),
    historySvg: history && history.length > 0 ? trainingHistorySvg(history) : undefined,
  };
}

/** report.html as a string. */
export async function renderReportHtml(evaluation: Evaluation, options: ReportOptions = {}): Promise<string> {
  const { metrics, auc, report } = evaluation;
  const figures = reportFigures(evaluation, options.history);
  const title = options.title ?? 'COVID-CT evaluation report';
  const percent = (v: number) => `${formatFixed(v * 100, 1)} %`;
  const details = Object.entries({
    ...options.details,
    'Generated': (options.generatedAt ?? new Date()).toISOString(),
    'Test images': `${evaluation.size} (${evaluation.positives} ${evaluation.classNames[1]}, ${evaluation.negatives} ${evaluation.classNames[0]})`,
  })
    .map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`)
    .join('');
  const warnings = report.undefinedMetrics.length
    ? `<p class="note">Undefined (0/0) and reported as 0.00, as scikit-learn does: ${escapeHtml(report.undefinedMetrics.join(', '))}.</p>`
    : '';
  const history = figures.historySvg
    ? `<h2 id="training-history">Training history</h2><img class="figure" alt="Training history: loss, accuracy, type I and type II error per epoch" src="${svgDataUri(figures.historySvg)}">`
    : '';

  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
<div class="banner" role="note">${escapeHtml(DISCLAIMER)}</div>
<main>
<h1>${escapeHtml(title)}</h1>
<dl class="details">${details}</dl>
<section id="headline" class="headline">
${card('Accuracy', formatFixed(metrics.accuracy, 3), `${metrics.tp + metrics.tn} of ${evaluation.size} correct`)}
${card('AUC', formatFixed(auc.auc, 3), `${Math.round(auc.level * 100)} % CI ${formatFixed(auc.low, 3)}–${formatFixed(auc.high, 3)}`)}
${card('Sensitivity', percent(metrics.sensitivity), `TP ${metrics.tp} / ${metrics.tp + metrics.fn}`)}
${card('Specificity', percent(metrics.specificity), `TN ${metrics.tn} / ${metrics.tn + metrics.fp}`)}
${card('Threshold', formatFixed(evaluation.threshold, 4), 'positive when p ≥ threshold')}
</section>
<h2 id="confusion-matrix">Confusion matrix</h2>
<img class="figure" alt="Confusion matrix: TN ${metrics.tn}, FP ${metrics.fp}, FN ${metrics.fn}, TP ${metrics.tp}" src="${svgDataUri(figures.confusionSvg)}">
<p class="note">Type I error (FP / (FP + TN)) ${escapeHtml(formatFixed(metrics.typeI, 3))}; type II error (FN / (FN + TP)) ${escapeHtml(formatFixed(metrics.typeII, 3))}.</p>
<h2 id="classification-report">Classification report</h2>
<pre>${escapeHtml(report.text)}</pre>
${reportTable(evaluation)}
${warnings}
<h2 id="roc">ROC curve</h2>
<img class="figure" alt="ROC curve, AUC ${escapeHtml(formatFixed(auc.auc, 3))}" src="${svgDataUri(figures.rocSvg)}">
<p class="note">AUC by the trapezoid rule (tied scores count one half). The ${Math.round(auc.level * 100)} % CI is the
percentile bootstrap over ${auc.resamples} resamples of the test images (seed ${auc.seed}; ${auc.skipped} single-class
resamples skipped).</p>
${(options.sections ?? []).map((s) => `<h2 id="${escapeHtml(s.id)}">${escapeHtml(s.heading)}</h2>\n${s.html}`).join('\n')}
${history}
<h2 id="galleries">Examples</h2>
${await gallery(evaluation, options)}
<p class="note">${escapeHtml(DISCLAIMER)} Probabilities are the model's output for the positive class (${escapeHtml(evaluation.classNames[1])}).</p>
</main>
</body>
</html>
`;
}

export interface WrittenReport {
  html: string;
  metricsJson: string;
  figures: string[];
}

/** Writes metrics.json as plain JSON. */
export async function writeMetricsJson(path: string, evaluation: Evaluation, extra: Record<string, unknown> = {}): Promise<void> {
  await writeFile(path, JSON.stringify(evaluationToJson(evaluation, extra), null, 2) + '\n');
}

/** Writes `name`.svg and `name`.png (rasterised by sharp) and returns both paths. */
export async function writeFigure(pathWithoutExtension: string, svg: string): Promise<string[]> {
  const svgPath = `${pathWithoutExtension}.svg`;
  const pngPath = `${pathWithoutExtension}.png`;
  await writeFile(svgPath, svg);
  await writeFile(pngPath, await svgToPng(svg));
  return [svgPath, pngPath];
}

/**
 * Writes report.html, metrics.json and the figures (roc, confusion-matrix, training-history when given; SVG and PNG)
 * into `directory`.
 */
export async function writeEvaluationReport(
  directory: string,
  evaluation: Evaluation,
  options: ReportOptions = {},
): Promise<WrittenReport> {
  await mkdir(directory, { recursive: true });
  const figures = reportFigures(evaluation, options.history);
  const written = [
    ...(await writeFigure(join(directory, 'roc'), figures.rocSvg)),
    ...(await writeFigure(join(directory, 'confusion-matrix'), figures.confusionSvg)),
  ];
  if (figures.historySvg) written.push(...(await writeFigure(join(directory, 'training-history'), figures.historySvg)));
  const html = join(directory, 'report.html');
  await writeFile(html, await renderReportHtml(evaluation, options));
  const metricsJson = join(directory, 'metrics.json');
  await writeMetricsJson(metricsJson, evaluation, { ...options.extra, ...(options.details && { details: options.details }) });
  return { html, metricsJson, figures: written };
}
