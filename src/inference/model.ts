/**
 * A trained covid-ct model: a frozen trunk run on ONNX Runtime up to the fine-tune cut, and the trained tail
 * (unfrozen layers + dropout + dense(1) logit) on tfjs. `predict` takes decoded 8-bit RGB images and returns
 * P(COVID) = sigmoid(logit). A saved model directory holds everything evaluate and predict need.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import sharp from 'sharp';
import type { Config, PreprocessConfig } from '../config/index.ts';
import { DEFAULTS } from '../config/index.ts';
import { imagePipeline } from '../data/pipeline.ts';
import type { DecodedImage } from '../data/decode.ts';
import { loadBackbone } from '../engine/backbone.ts';
import { sha256File } from '../engine/cache.ts';
import type { Backbone } from '../engine/backbone.ts';
import { initWasmBackend } from '../engine/kernels/index.ts';
import { loadTfjsLayersModel } from '../engine/tfjs-io.ts';
import { tailLogits } from '../engine/train/index.ts';

export const MODEL_FORMAT = 'covid-ct-model/1';

/** model.json of a saved model directory. */
export interface ModelCard {
  format: typeof MODEL_FORMAT;
  id: string;
  createdAt: string;
  backbone: { name: string; source: string; sourceSha256: string; fineTuneAt: string; inputSize: number };
  imageSize: number;
  /** The deterministic preprocessing the model was trained with (lung crop, grayscale), repeated at inference. */
  preprocess: PreprocessConfig;
  /** Decision threshold chosen on validation. */
  threshold: number;
  thresholdRule: string;
  classes: Config['data']['classes'];
  validation: Record<string, number>;
  seed: number;
  disclaimer: string;
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

/** Probabilities from trunk activations through the tail, in inference mode. */
export function tailProbabilities(tail: tfl.LayersModel, activations: Float32Array, shape: readonly number[], batchSize = 64): Float32Array {
  const per = shape.reduce((a, b) => a * b, 1);
  const n = activations.length / per;
  const out = new Float32Array(n);
  for (let start = 0; start < n; start += batchSize) {
    const count = Math.min(batchSize, n - start);
    const probabilities = tf.tidy(() => {
      const x = tf.tensor(activations.subarray(start * per, (start + count) * per), [count, ...shape]);
      return tf.sigmoid(tailLogits(tail, x)).dataSync();
    });
    out.set(probabilities, start);
  }
  return out;
}

export interface LoadedModel {
  dir: string;
  card: ModelCard;
  trunk: Backbone;
  tail: tfl.LayersModel;
  /** The model's deterministic preprocessing (lung crop, grayscale), as in training. */
  prepare(image: DecodedImage, onWarning?: (warning: string) => void): DecodedImage;
  /** P(COVID) for each image (decoded RGB, any size): prepared, then trunk and tail. */
  predict(images: ReadonlyArray<DecodedImage>, onWarning?: (warning: string) => void): Promise<Float32Array>;
  dispose(): Promise<void>;
}

export async function loadModel(dir: string): Promise<LoadedModel> {
  let card: ModelCard;
  try {
    card = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as ModelCard;
  } catch (error) {
    throw new ModelError(`${dir}: not a covid-ct model directory (model.json: ${(error as Error).message})`);
  }
  if (card.format !== MODEL_FORMAT) throw new ModelError(`${dir}/model.json: format '${card.format}', expected '${MODEL_FORMAT}'`);
  await initWasmBackend();
  // The trunk must be the one the tail was trained on: same weight file, same bytes.
  const source = card.backbone.source;
  if (source && existsSync(source) && sha256File(source) !== card.backbone.sourceSha256) {
    throw new ModelError(`${dir}: the backbone weights at ${source} changed since this model was trained (sha256 differs)`);
  }
  const trunk = await loadBackbone(card.backbone.name, { cut: card.backbone.fineTuneAt, ...(source?.endsWith('.h5') && { weights: source }) });
  const tail = await loadTfjsLayersModel(join(dir, 'tail', 'model.json'));
  // Models written before preprocessing existed had none.
  const pipeline = imagePipeline(card.preprocess ?? { ...DEFAULTS.preprocess, grayscale: false, jpegReencode: false, lungCrop: false });
  return {
    dir,
    card,
    trunk,
    tail,
    prepare: pipeline.prepare,
    async predict(images, onWarning) {
      const activations = await trunkActivations(trunk, images.map((image) => pipeline.prepare(image, onWarning)), card.imageSize);
      return tailProbabilities(tail, activations, trunk.outputShape);
    },
    async dispose() {
      tail.dispose();
      await trunk.dispose();
    },
  };
}
