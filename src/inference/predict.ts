/**
 * Predictions over studies: P(COVID) per image or slice, the label at the model's own threshold, and for a DICOM
 * series or NIfTI volume a study-level score, the mean of the k highest slice probabilities (k = predict.topK,
 * default 5, or every slice when the study has fewer). Top-k rather than the mean of all slices because COVID
 * pneumonia is often in a few slices of a long scan; rather than the maximum because one noisy slice should not
 * decide. Optional Grad-CAM overlays, one PNG per image or slice.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { csvField } from '../data/csv.ts';
import type { DecodedImage } from '../data/decode.ts';
import { DISCLAIMER, trunkActivations } from './model.ts';
import type { LoadedModel } from './model.ts';
import { gradCam, heatmapOverlay } from './gradcam.ts';
import { asFailure } from './inputs.ts';
import { topKMean } from '../evaluation/metrics.ts';
import type { InputFailure, InputKind, LoadedSlice, SliceSource, Study } from './inputs.ts';

export const LABELS = { positive: 'COVID', negative: 'non-COVID' } as const;
export type Label = (typeof LABELS)[keyof typeof LABELS];

export interface SlicePrediction {
  file: string;
  /** Index in the study (0 = most inferior); null for a lone image or DICOM slice. */
  slice: number | null;
  kind: InputKind;
  probability: number;
  label: Label;
  threshold: number;
  modelId: string;
  warnings: string[];
  /** Grad-CAM overlay: the PNG's path (predict --explain) or a data: URL (serve). */
  heatmap?: string;
}

export interface StudyPrediction {
  source: string;
  kind: InputKind;
  slices: number;
  /** How many of the highest slice probabilities were averaged. */
  k: number;
  score: number;
  label: Label;
  threshold: number;
  modelId: string;
  warnings: string[];
}

export interface PredictionReport {
  disclaimer: string;
  model: { id: string; backbone: string; threshold: number; imageSize: number };
  predictions: SlicePrediction[];
  studies: StudyPrediction[];
  failures: InputFailure[];
}

export type ExplainTarget = { kind: 'files'; dir: string } | { kind: 'data-url' };

export interface PredictOptions {
  topK: number;
  batchSize: number;
  explain?: ExplainTarget;
  heatmapOpacity: number;
  /** Runs a batch of images through the model; default model.predict (serve passes its batching queue). */
  probabilities?: (images: DecodedImage[]) => Promise<Float32Array>;
}

export function labelOf(probability: number, threshold: number): Label {
  return probability >= threshold ? LABELS.positive : LABELS.negative;
}

// The study score's rule, shared with evaluate's patient-level score; re-exported where it always was.
export { topKMean };

function heatmapName(file: string, slice: number | null, taken: Set<string>): string {
  const stem = basename(file).replace(/[^\w.-]+/g, '_').replace(/\.(dcm|nii|nii\.gz|png|jpe?g|bmp|tiff?|webp|gif)$/i, '');
  const base = `${stem}${slice === null ? '' : `_slice${String(slice).padStart(4, '0')}`}_gradcam`;
  let name = `${base}.png`;
  for (let n = 2; taken.has(name); n++) name = `${base}-${n}.png`;
  taken.add(name);
  return name;
}

/**
 * Grad-CAM overlays of a batch. The probabilities still come from model.predict (so test-time augmentation and
 * ensembles are honoured); the map explains the model's own trunk and tail (an ensemble's first member) on the image it
 * actually sees, after the model's preprocessing, and is drawn over that image.
 */
async function explainSlices(model: LoadedModel, images: DecodedImage[], opacity: number): Promise<Buffer[]> {
  const seen = images.map((image) => model.prepare(image));
  const activations = await trunkActivations(model.trunk, seen, model.card.imageSize);
  const per = model.trunk.outputSize;
  const overlays: Buffer[] = [];
  for (let i = 0; i < seen.length; i++) {
    const cam = gradCam(model.tail, activations.subarray(i * per, (i + 1) * per), model.trunk.outputShape);
    overlays.push(await heatmapOverlay(seen[i]!, cam, opacity));
  }
  return overlays;
}

/** Predicts every slice of every study, batch by batch; a slice that cannot be loaded becomes a failure. */
export async function predictStudies(model: LoadedModel, studies: readonly Study[], options: PredictOptions, failures: InputFailure[] = []): Promise<PredictionReport> {
  const { card } = model;
  const predictions: SlicePrediction[] = [];
  const studyResults: StudyPrediction[] = [];
  const taken = new Set<string>();
  if (options.explain?.kind === 'files') mkdirSync(options.explain.dir, { recursive: true });
  const probabilitiesOf = options.probabilities ?? ((images) => model.predict(images));

  for (const study of studies) {
    const studyPredictions: SlicePrediction[] = [];
    for (let start = 0; start < study.slices.length; start += options.batchSize) {
      const loaded: Array<{ source: SliceSource; slice: LoadedSlice }> = [];
      for (const source of study.slices.slice(start, start + options.batchSize)) {
        try {
          loaded.push({ source, slice: await source.load() });
        } catch (error) {
          failures.push(asFailure(error, source.file, source.slice));
        }
      }
      if (loaded.length === 0) continue;
      const images = loaded.map((l) => l.slice.image);
      const probabilities = await probabilitiesOf(images);
      const overlays = options.explain ? await explainSlices(model, images, options.heatmapOpacity) : undefined;
      loaded.forEach(({ source, slice }, i) => {
        const probability = probabilities[i]!;
        const prediction: SlicePrediction = {
          file: source.file,
          slice: source.slice ?? null,
          kind: study.kind,
          probability,
          label: labelOf(probability, card.threshold),
          threshold: card.threshold,
          modelId: card.id,
          warnings: slice.warnings,
        };
        const overlay = overlays?.[i];
        if (overlay && options.explain?.kind === 'files') {
          const path = join(options.explain.dir, heatmapName(source.file, prediction.slice, taken));
          writeFileSync(path, overlay);
          prediction.heatmap = path;
        } else if (overlay) {
          prediction.heatmap = `data:image/png;base64,${overlay.toString('base64')}`;
        }
        studyPredictions.push(prediction);
      });
    }
    predictions.push(...studyPredictions);
    if ((study.kind === 'dicom-series' || study.kind === 'nifti') && studyPredictions.length > 0) {
      const { score, k } = topKMean(studyPredictions.map((p) => p.probability), options.topK);
      studyResults.push({
        source: study.source,
        kind: study.kind,
        slices: studyPredictions.length,
        k,
        score,
        label: labelOf(score, card.threshold),
        threshold: card.threshold,
        modelId: card.id,
        warnings: study.warnings,
      });
    } else if (study.warnings.length > 0 && studyPredictions[0]) {
      studyPredictions[0].warnings = [...study.warnings, ...studyPredictions[0].warnings];
    }
  }
  return {
    disclaimer: DISCLAIMER,
    model: { id: card.id, backbone: card.backbone.name, threshold: card.threshold, imageSize: card.imageSize },
    predictions,
    studies: studyResults,
    failures,
  };
}

export const CSV_COLUMNS = ['type', 'file', 'slice', 'kind', 'probability', 'label', 'threshold', 'model_id', 'k', 'heatmap', 'reason'] as const;

/**
 * One table: `slice` rows (an image or slice), `study` rows (series/volume score; `probability` is the top-k
 * mean, `k` how many slices it averages) and `failure` rows (with the reason). The first line is the disclaimer,
 * as a `#` comment.
 */
export function toCsv(report: PredictionReport): string {
  const rows: Array<Array<string | number | null | undefined>> = [];
  for (const p of report.predictions) rows.push(['slice', p.file, p.slice, p.kind, p.probability, p.label, p.threshold, p.modelId, null, p.heatmap, null]);
  for (const s of report.studies) rows.push(['study', s.source, null, s.kind, s.score, s.label, s.threshold, s.modelId, s.k, null, null]);
  for (const f of report.failures) rows.push(['failure', f.file, f.slice, null, null, null, null, report.model.id, null, null, f.reason]);
  return [`# ${report.disclaimer}`, CSV_COLUMNS.join(','), ...rows.map((row) => row.map(csvField).join(','))].join('\n') + '\n';
}

export function toJson(report: PredictionReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}
