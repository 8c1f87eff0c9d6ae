/** Keras-style model summaries: one row per layer (name, type, output shape, parameters) and the totals. */
import type * as tfl from '@tensorflow/tfjs-layers';
import { buildTfjsModel } from './backbone.ts';
import { BackboneError, resolveBackbone } from './registry.ts';

export interface LayerRow {
  /** Index in model.layers (Keras's numbering: the input is 0). */
  index: number;
  name: string;
  /** Layer class, as Keras names it (Conv2D, DepthwiseConv2D, ...). */
  type: string;
  /** Output shape with the batch dimension as null, e.g. [null, 112, 112, 32]. */
  outputShape: Array<number | null>;
  params: number;
}

export interface ModelSummary {
  name: string;
  layers: LayerRow[];
  totalParams: number;
  trainableParams: number;
  nonTrainableParams: number;
}

const sizeOf = (shape: ReadonlyArray<number | null>): number => shape.reduce<number>((a, b) => a * (b ?? 1), 1);

export function summarizeModel(model: tfl.LayersModel): ModelSummary {
  const layers = model.layers.map((layer, index): LayerRow => {
    const shape = layer.outputShape;
    // Single-output layers only here; a multi-output layer shows its first output.
    const first = (Array.isArray(shape[0]) ? shape[0] : shape) as Array<number | null>;
    return { index, name: layer.name, type: layer.getClassName(), outputShape: first, params: layer.countParams() };
  });
  const trainableParams = model.trainableWeights.reduce((sum, w) => sum + sizeOf(w.shape), 0);
  const totalParams = model.weights.reduce((sum, w) => sum + sizeOf(w.shape), 0);
  return { name: model.name, layers, totalParams, trainableParams, nonTrainableParams: totalParams - trainableParams };
}

const shapeText = (shape: ReadonlyArray<number | null>): string => `(${shape.map((d) => (d === null ? 'None' : String(d))).join(', ')}${shape.length === 1 ? ',' : ''})`;
const count = (n: number): string => n.toLocaleString('en-US');

/** The summary as a text table, like Keras's model.summary() plus the layer index. */
export function formatSummary(summary: ModelSummary): string {
  const rows = summary.layers.map((l) => [String(l.index), l.name, l.type, shapeText(l.outputShape), count(l.params)]);
  const header = ['#', 'layer', 'type', 'output shape', 'params'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 || i === 4 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [
    `Model: ${summary.name}`,
    line(header),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.map(line),
    `Total params: ${count(summary.totalParams)}`,
    `Trainable params: ${count(summary.trainableParams)}`,
    `Non-trainable params: ${count(summary.nonTrainableParams)}`,
  ].join('\n');
}

export interface BackboneSummaryOptions {
  /** Keras-format backbones: the model with the ImageNet classifier instead of pooled features; default false. */
  includeTop?: boolean;
  /** Feature layer of a tfjs layers model directory. */
  featureLayer?: string;
  cacheDir?: string;
}

/**
 * The layer table of a registry backbone as covid-ct builds it. Keras-format backbones are summarised from
 * their architecture (no weight file needed); the others from their weights, as the engine's tfjs model.
 */
export async function backboneSummary(name: string, options: BackboneSummaryOptions = {}): Promise<ModelSummary> {
  if (options.includeTop !== undefined && typeof options.includeTop !== 'boolean') {
    throw new BackboneError(`includeTop must be true or false, got ${JSON.stringify(options.includeTop)}`);
  }
  const spec = resolveBackbone(name, options.featureLayer === undefined ? {} : { featureLayer: options.featureLayer });
  if (options.includeTop && !spec.build) throw new BackboneError(`includeTop: '${spec.name}' is not a Keras-format backbone; its summary is its feature model`);
  const model = spec.build
    ? spec.build({ includeTop: options.includeTop ?? false })
    : await buildTfjsModel(name, { ...(options.featureLayer ? { featureLayer: options.featureLayer } : {}), ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}) });
  try {
    return summarizeModel(model);
  } finally {
    model.dispose();
  }
}
