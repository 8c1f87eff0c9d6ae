/**
 * A trained covid-ct model: a frozen trunk run on ONNX Runtime up to the fine-tune cut, and the trained tail
 * (unfrozen layers + dropout + dense(1) logit), kept as a tfjs model and run on ONNX Runtime where its graph
 * covers it. `predict` takes decoded 8-bit RGB images and returns P(COVID) = sigmoid(logit). A saved model
 * directory holds everything evaluate and predict need.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type * as tfl from '@tensorflow/tfjs-layers';
import sharp from 'sharp';
import type { Config, ForwardEngineName, PreprocessConfig, TtaMode } from '../config/index.ts';
import { DEFAULTS, TTA_MODES } from '../config/index.ts';
import { mirrorViews } from '../data/augment.ts';
import { imagePipeline } from '../data/pipeline.ts';
import type { DecodedImage } from '../data/decode.ts';
import { loadBackbone } from '../engine/backbone.ts';
import { sha256File } from '../engine/cache.ts';
import type { Backbone } from '../engine/backbone.ts';
import { initWasmBackend } from '../engine/kernels/index.ts';
import { loadTfjsLayersModel } from '../engine/tfjs-io.ts';
import { tailForward } from '../engine/train/index.ts';

export const MODEL_FORMAT = 'covid-ct-model/1';
export const ENSEMBLE_FORMAT = 'covid-ct-ensemble/1';

export type Tta = TtaMode;
export { TTA_MODES };

/** model.json of a saved model directory. */
export interface ModelCard {
  format: typeof MODEL_FORMAT | typeof ENSEMBLE_FORMAT;
  id: string;
  createdAt: string;
  backbone: { name: string; source: string; sourceSha256: string; fineTuneAt: string; inputSize: number };
  imageSize: number;
  /** The deterministic preprocessing the model was trained with (lung crop, grayscale, intensity), repeated at inference. */
  preprocess: PreprocessConfig;
  /** Decision threshold chosen on validation. */
  threshold: number;
  thresholdRule: string;
  classes: Config['data']['classes'];
  validation: Record<string, number>;
  seed: number;
  disclaimer: string;
  /** Test-time augmentation the threshold was chosen with, and that inference uses unless told otherwise. */
  tta?: TtaMode;
  /** Set when the kept weights are a weight average (train.averageLast): of which epochs. */
  weightAverage?: string;
  /** Where in the training schedule the kept weights were taken (absent for a weight average). */
  checkpoint?: { stage: string; round: number; phase: 1 | 2; epoch: number };
  /**
   * A refit (train.refit): trained on the training and validation images of `selection` (a model directory,
   * relative to this one) up to its kept epoch; the threshold and `validation` are that run's.
   */
  refit?: { selection: string; trainImages: number };
  /** Ensembles: the member model directories (relative to the ensemble's), whose probabilities are averaged. */
  members?: string[];
}

export const DISCLAIMER = 'Research software, not a diagnostic device.';

export class ModelError extends Error {
  override name = 'ModelError';
}

/** Resizes an RGB image (a decoded image of any size, or raw size x size bytes) to the trunk's square input, as float32 0-255. */
export async function toTrunkInput(image: DecodedImage | Uint8Array, size: number, inputSize: number): Promise<Float32Array> {
  const { data, width, height } = image instanceof Uint8Array ? { data: image, width: size, height: size } : image;
  if (width === inputSize && height === inputSize) return Float32Array.from(data);
  // Bilinear and aspect ratio not kept, as the decoder's resize.
  const resized = await sharp(data, { raw: { width, height, channels: 3 } }).resize(inputSize, inputSize, { fit: 'fill', kernel: 'linear' }).raw().toBuffer();
  return Float32Array.from(resized);
}

/** Trunk activations of RGB images, batch by batch, in input order. */
export async function trunkActivations(trunk: Backbone, images: ReadonlyArray<DecodedImage | Uint8Array>, size: number, batchSize = 32): Promise<Float32Array> {
  const out = new Float32Array(images.length * trunk.outputSize);
  const pixels = trunk.inputSize * trunk.inputSize * 3;
  for (let start = 0; start < images.length; start += batchSize) {
    const chunk = images.slice(start, start + batchSize);
    const input = new Float32Array(chunk.length * pixels);
    const resized = await Promise.all(chunk.map((image) => toTrunkInput(image, size, trunk.inputSize)));
    resized.forEach((r, i) => input.set(r, i * pixels));
    out.set(await trunk.forward(input, chunk.length), start * trunk.outputSize);
  }
  return out;
}

/** Test-time augmentation's score: per image, the mean of its views' probabilities (one array per view). */
export function meanOfViews(views: readonly Float32Array[]): Float32Array {
  const mean = new Float32Array(views[0]!.length);
  for (let i = 0; i < mean.length; i++) mean[i] = views.reduce((sum, view) => sum + view[i]!, 0) / views.length;
  return mean;
}

/** P(COVID) from the tail's logit. */
export const sigmoid = (logit: number): number => 1 / (1 + Math.exp(-logit));

export interface LoadedModel {
  dir: string;
  card: ModelCard;
  /** The options it was loaded with: loading `dir` again with them gives the same model (e.g. in a worker). */
  loadOptions: LoadModelOptions;
  /** The test-time augmentation in use (the option given, else the card's, else none; an ensemble's members each resolve their own). */
  tta: Tta;
  /** The trunk and tail (of the first member, for an ensemble: Grad-CAM explains that member). */
  trunk: Backbone;
  tail: tfl.LayersModel;
  /** Where the tail runs: ONNX Runtime, or tfjs for layers its graph does not cover. */
  tailEngine: 'onnx' | 'tfjs';
  /** The model's deterministic preprocessing (lung crop, grayscale, intensity), as in training. */
  prepare(image: DecodedImage, onWarning?: (warning: string) => void): DecodedImage;
  /** P(COVID) for each image (decoded RGB, any size): prepared, then trunk and tail (averaged over TTA views and members). */
  predict(images: ReadonlyArray<DecodedImage>, onWarning?: (warning: string) => void): Promise<Float32Array>;
  dispose(): Promise<void>;
}

export interface LoadModelOptions {
  tta?: Tta;
  /** Where the trunk runs (default onnx). */
  engine?: ForwardEngineName;
}

function readCard(dir: string): ModelCard {
  let card: ModelCard;
  try {
    card = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as ModelCard;
  } catch (error) {
    throw new ModelError(`${dir}: not a covid-ct model directory (model.json: ${(error as Error).message})`);
  }
  if (card.format !== MODEL_FORMAT && card.format !== ENSEMBLE_FORMAT) {
    throw new ModelError(`${dir}/model.json: format '${card.format}', expected '${MODEL_FORMAT}' or '${ENSEMBLE_FORMAT}'`);
  }
  return card;
}

/** Loads a model or an ensemble directory. */
export async function loadModel(dir: string, options: LoadModelOptions = {}): Promise<LoadedModel> {
  const card = readCard(dir);
  // An explicit option wins; otherwise the test-time augmentation the model's threshold was chosen with.
  const tta = options.tta ?? card.tta ?? 'none';
  if (!TTA_MODES.includes(tta)) throw new ModelError(`tta must be one of ${TTA_MODES.join(', ')}, got '${tta}'`);
  if (card.format === ENSEMBLE_FORMAT) return loadEnsemble(dir, card, options);
  await initWasmBackend();
  // The trunk must be the one the tail was trained on: same weight file, same bytes.
  const source = card.backbone.source;
  if (source && existsSync(source) && sha256File(source) !== card.backbone.sourceSha256) {
    throw new ModelError(`${dir}: the backbone weights at ${source} changed since this model was trained (sha256 differs)`);
  }
  const engine = options.engine ?? 'onnx';
  const trunk = await loadBackbone(card.backbone.name, {
    cut: card.backbone.fineTuneAt,
    engine,
    ...(source?.endsWith('.h5') && { weights: source }),
    ...(card.backbone.inputSize && { inputSize: card.backbone.inputSize }),
  });
  const tail = await loadTfjsLayersModel(join(dir, 'tail', 'model.json'));
  // Models written before preprocessing existed had none.
  const pipeline = imagePipeline(card.preprocess ?? { ...DEFAULTS.preprocess, grayscale: false, jpegReencode: false, lungCrop: false });
  // Inference-mode tail on ONNX Runtime where its graph covers the layers (the default tail: a few ms a batch).
  const forward = await tailForward(tail, trunk.outputShape, { engine, map: sigmoid });
  const probabilities = async (images: DecodedImage[]) => forward.run(await trunkActivations(trunk, images, card.imageSize));
  return {
    dir,
    card,
    loadOptions: options,
    tta,
    trunk,
    tail,
    tailEngine: forward.engine,
    prepare: pipeline.prepare,
    async predict(images, onWarning) {
      const prepared = images.map((image) => pipeline.prepare(image, onWarning));
      if (tta === 'none') return probabilities(prepared);
      // The image and its two mirrors in one trunk and tail pass: one batch of 3n is cheaper than three of n.
      const mirrored = prepared.map(mirrorViews);
      const all = await probabilities([...prepared, ...mirrored.map((views) => views[0]!), ...mirrored.map((views) => views[1]!)]);
      const n = prepared.length;
      return meanOfViews([0, 1, 2].map((view) => all.subarray(view * n, (view + 1) * n)));
    },
    async dispose() {
      tail.dispose();
      await Promise.all([forward.dispose(), trunk.dispose()]);
    },
  };
}

async function loadEnsemble(dir: string, card: ModelCard, options: LoadModelOptions): Promise<LoadedModel> {
  if (!card.members?.length) throw new ModelError(`${dir}/model.json: an ensemble needs members`);
  const members: LoadedModel[] = [];
  try {
    for (const member of card.members) members.push(await loadModel(resolve(dir, member), options));
  } catch (error) {
    await Promise.all(members.map((m) => m.dispose()));
    throw error;
  }
  const first = members[0]!;
  return {
    dir,
    card,
    loadOptions: options,
    tta: first.tta,
    trunk: first.trunk,
    tail: first.tail,
    tailEngine: first.tailEngine,
    prepare: first.prepare,
    async predict(images, onWarning) {
      const sum = new Float32Array(images.length);
      for (const member of members) {
        const p = await member.predict(images, onWarning);
        for (let i = 0; i < sum.length; i++) sum[i]! += p[i]! / members.length;
      }
      return sum;
    },
    async dispose() {
      await Promise.all(members.map((m) => m.dispose()));
    },
  };
}
