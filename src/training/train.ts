/**
 * Two-phase transfer learning, as published, on a cached trunk:
 *  - the frozen trunk (everything before train.fineTuneAt) never changes, so its activations for K augmented
 *    views of every training image (and the plain validation images) are computed once per dataset on
 *    ONNX Runtime, and every epoch trains the tail from that cache (epoch e uses view e mod K);
 *  - phase 1 trains the head (dropout + dense(1)) with the tail's backbone layers frozen; phase 2 unfreezes
 *    them; both run train.rounds times; the loss is binary cross-entropy from the logit, computed once;
 *  - the weights with the lowest validation loss over the whole run are kept; the decision threshold is
 *    chosen on validation (Youden's J).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { Config } from '../config/index.ts';
import { augmenter } from '../data/augment.ts';
import type { ImageCache } from '../data/cache.ts';
import type { ImageRecord } from '../data/dataset.ts';
import type { ImageError } from '../data/errors.ts';
import { loadImages } from '../data/loader.ts';
import type { LoadedImage } from '../data/loader.ts';
import { Rng } from '../data/random.ts';
import type { SplitManifest } from '../data/split.ts';
import { buildTfjsModel, loadBackbone } from '../engine/backbone.ts';
import type { Backbone } from '../engine/backbone.ts';
import { initWasmBackend, registerTrainingKernels } from '../engine/kernels/index.ts';
import { sha256File } from '../engine/cache.ts';
import { saveTfjsLayersModel } from '../engine/tfjs-io.ts';
import { localBatchGradients, runTail, trainableVariables } from '../engine/train/index.ts';
import { confusionFromPredictions, predict, ratesFromCounts, youdenThreshold } from '../evaluation/metrics.ts';
import type { EpochMetrics, EpochRecord } from '../evaluation/plots.ts';
import { trainingHistorySvg } from '../evaluation/plots.ts';
import { writeFigure } from '../evaluation/report.ts';
import { DISCLAIMER, MODEL_FORMAT, tailProbabilities, trunkActivations } from '../inference/model.ts';
import type { ModelCard } from '../inference/model.ts';

export class TrainingError extends Error {
  override name = 'TrainingError';
}

export interface StageData {
  name: string;
  train: ImageRecord[];
  val: ImageRecord[];
}

export interface TrainProgress {
  (event: { stage: string; phase: number; round: number; epoch: number; epochs: number; record: EpochRecord; seconds: number }): void;
}

interface CachedFeatures {
  /** One Float32Array per view: trainCount x activation size. */
  views: Float32Array[];
  trainLabels: Float32Array;
  val: Float32Array;
  valLabels: Float32Array;
  valRecords: ImageRecord[];
}

async function loadAll(records: ImageRecord[], cache: ImageCache, config: Config, failures: ImageError[]): Promise<LoadedImage[]> {
  const result = await loadImages(records, cache, { size: config.data.imageSize, strict: config.data.strict });
  failures.push(...result.failures);
  return result.images;
}

async function cacheFeatures(stage: StageData, trunk: Backbone, cache: ImageCache, config: Config, failures: ImageError[], log: (line: string) => void): Promise<CachedFeatures> {
  const started = performance.now();
  const train = await loadAll(stage.train, cache, config, failures);
  const val = await loadAll(stage.val, cache, config, failures);
  if (train.length === 0 || val.length === 0) throw new TrainingError(`${stage.name}: no readable ${train.length === 0 ? 'training' : 'validation'} images`);
  const augment = augmenter(config.augment);
  const rng = new Rng(config.seed);
  const views: Float32Array[] = [];
  for (let v = 0; v < config.train.views; v++) {
    const inputs = train.map((image) => augment(image, rng));
    views.push(await trunkActivations(trunk, inputs, config.data.imageSize));
  }
  const valFeatures = await trunkActivations(trunk, val, config.data.imageSize);
  log(`${stage.name}: trunk activations for ${config.train.views} views of ${train.length} training and ${val.length} validation images in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return {
    views,
    trainLabels: Float32Array.from(train, (i) => i.record.label),
    val: valFeatures,
    valLabels: Float32Array.from(val, (i) => i.record.label),
    valRecords: val.map((i) => i.record),
  };
}

function binaryCrossEntropy(labels: Float32Array, probabilities: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < labels.length; i++) {
    const p = Math.min(1 - 1e-7, Math.max(1e-7, probabilities[i]!));
    sum -= labels[i]! * Math.log(p) + (1 - labels[i]!) * Math.log(1 - p);
  }
  return sum / labels.length;
}

function epochMetrics(labels: Float32Array, probabilities: Float32Array, loss: number): EpochMetrics & { tp: number; fp: number; tn: number; fn: number } {
  const counts = confusionFromPredictions(Array.from(labels), predict(Array.from(probabilities), 0.5));
  const rates = ratesFromCounts(counts);
  return { loss, accuracy: rates.accuracy, typeI: rates.typeI, typeII: rates.typeII, ...counts };
}

export interface Classifier {
  /** Cut activation -> logit: the backbone's layers from fineTuneAt, then dropout and dense(1). */
  model: tfl.LayersModel;
  /** Cut activation -> pooled features: the backbone part alone (shares its layers with `model`). */
  backbone: tfl.LayersModel;
  /** Pooled features -> logit: the head alone (shares its layers with `model`). */
  head: tfl.LayersModel;
}

export async function buildClassifier(config: Config): Promise<Classifier> {
  const backbone = await buildTfjsModel(config.train.backbone, { from: config.train.fineTuneAt });
  const dropout = tfl.layers.dropout({ rate: config.train.dropout, name: 'head_dropout', seed: config.seed });
  const dense = tfl.layers.dense({ units: 1, name: 'head_logit', kernelInitializer: tfl.initializers.glorotUniform({ seed: config.seed }) });
  const model = tfl.model({ inputs: backbone.inputs, outputs: dense.apply(dropout.apply(backbone.outputs[0]!)) as tfl.SymbolicTensor, name: 'covid_ct_classifier' });
  const pooled = tfl.input({ shape: backbone.outputs[0]!.shape.slice(1) as number[], name: 'pooled_features' });
  const head = tfl.model({ inputs: pooled, outputs: dense.apply(dropout.apply(pooled)) as tfl.SymbolicTensor, name: 'covid_ct_head' });
  return { model, backbone, head };
}

/** The frozen backbone part's output for every example (inference mode), batch by batch. */
function backboneFeatures(backbone: tfl.LayersModel, activations: Float32Array, shape: readonly number[], batchSize = 64): Float32Array {
  const per = shape.reduce((a, b) => a * b, 1);
  const n = activations.length / per;
  const width = backbone.outputs[0]!.shape[1] as number;
  const out = new Float32Array(n * width);
  for (let start = 0; start < n; start += batchSize) {
    const count = Math.min(batchSize, n - start);
    out.set(
      tf.tidy(() => runTail(backbone, tf.tensor(activations.subarray(start * per, (start + count) * per), [count, ...shape]), false).dataSync()),
      start * width,
    );
  }
  return out;
}

export interface TrainResult {
  card: ModelCard;
  history: EpochRecord[];
  failures: ImageError[];
  dir: string;
}

export interface TrainOptions {
  out: string;
  manifest: SplitManifest;
  stages: StageData[];
  onEpoch?: TrainProgress;
  log?: (line: string) => void;
  /** Checked between epochs: when it returns true (Ctrl-C), the best weights so far are saved and training stops. */
  shouldStop?: () => boolean;
}

export async function train(config: Config, cache: ImageCache, options: TrainOptions): Promise<TrainResult> {
  const log = options.log ?? (() => {});
  await initWasmBackend();
  registerTrainingKernels();
  const failures: ImageError[] = [];
  const trunk = await loadBackbone(config.train.backbone, { cut: config.train.fineTuneAt });
  const { model, backbone, head } = await buildClassifier(config);
  const backboneLayers = new Set(backbone.layers.map((l) => l.name));
  const history: EpochRecord[] = [];
  let best: { loss: number; weights: Map<string, tf.Tensor>; stage: string } | undefined;
  let lastValProbabilities: Float32Array = new Float32Array();
  let lastVal: CachedFeatures | undefined;
  const shape = trunk.outputShape;
  let stopped = false;

  try {
    for (const stage of options.stages) {
      const features = await cacheFeatures(stage, trunk, cache, config, failures, log);
      best = undefined; // the checkpoint kept is the best on this stage's validation set (the last stage is COVID-CT)
      const count = features.trainLabels.length;
      const rng = new Rng(config.seed + 1);
      let epochIndex = 0;
      for (let round = 1; round <= config.train.rounds && !stopped; round++) {
        for (const phase of [1, 2] as const) {
          const settings = phase === 1 ? config.train.phase1 : config.train.phase2;
          for (const layer of model.layers) layer.trainable = phase === 2 || !backboneLayers.has(layer.name);
          // Phase 1: the backbone part is frozen too, so its pooled output is computed once per phase
          // (per view) and only the head trains on it; phase 2 trains the whole tail on the trunk cache.
          const phaseStarted = performance.now();
          const trained = phase === 1 ? head : model;
          const inputShape = phase === 1 ? (head.inputs[0]!.shape.slice(1) as number[]) : [...shape];
          const usedViews = Math.min(features.views.length, settings.epochs);
          const phaseViews = phase === 1 ? features.views.slice(0, usedViews).map((v) => backboneFeatures(backbone, v, shape)) : features.views;
          const phaseVal = phase === 1 ? backboneFeatures(backbone, features.val, shape) : features.val;
          const per = inputShape.reduce((a, b) => a * b, 1);
          let setupSeconds = (performance.now() - phaseStarted) / 1000;
          const optimizer = tf.train.adam(settings.learningRate);
          const variables = trainableVariables(trained);
          const gradients = localBatchGradients(trained, inputShape);
          for (let epoch = 1; epoch <= settings.epochs && !stopped; epoch++) {
            const started = performance.now();
            const view = phaseViews[epochIndex % phaseViews.length]!;
            epochIndex++;
            const order = rng.shuffled(Array.from({ length: count }, (_, i) => i));
            for (let start = 0; start < count; start += config.batchSize) {
              const batch = order.slice(start, start + config.batchSize);
              const x = new Float32Array(batch.length * per);
              const y = new Float32Array(batch.length);
              batch.forEach((index, i) => {
                x.set(view.subarray(index * per, (index + 1) * per), i * per);
                y[i] = features.trainLabels[index]!;
              });
              const { loss, gradients: grads } = await gradients(x, y);
              if (!Number.isFinite(loss)) {
                tf.dispose(grads);
                throw new TrainingError(`${stage.name} phase ${phase} round ${round} epoch ${epoch}: the loss became ${loss}; stopping (the last good checkpoint is kept)`);
              }
              optimizer.applyGradients(variables.map((variable, i) => ({ name: variable.name, tensor: grads[i]! })));
              tf.dispose(grads);
            }
            const trainProbabilities = tailProbabilities(trained, view, inputShape);
            const valProbabilities = tailProbabilities(trained, phaseVal, inputShape);
            const record: EpochRecord = {
              phase: options.stages.length > 1 ? `${stage.name} ${phase}` : phase,
              round,
              epoch,
              train: epochMetrics(features.trainLabels, trainProbabilities, binaryCrossEntropy(features.trainLabels, trainProbabilities)),
              val: epochMetrics(features.valLabels, valProbabilities, binaryCrossEntropy(features.valLabels, valProbabilities)),
            };
            history.push(record);
            if (!best || record.val!.loss < best.loss) {
              tf.dispose([...(best?.weights.values() ?? [])]);
              // By name: getWeights() orders trainable weights first, and phases change which are trainable.
              best = { loss: record.val!.loss, weights: new Map(model.weights.map((w) => [w.name, w.read().clone()])), stage: stage.name };
              lastValProbabilities = valProbabilities;
            }
            options.onEpoch?.({ stage: stage.name, phase, round, epoch, epochs: settings.epochs, record, seconds: (performance.now() - started) / 1000 + setupSeconds });
            setupSeconds = 0;
            stopped = options.shouldStop?.() ?? false;
          }
          optimizer.dispose();
        }
      }
      lastVal = features;
      if (stopped) break;
    }
    if (!best || !lastVal) throw new TrainingError('no epoch finished: nothing to save');
    for (const weight of model.weights) weight.write(best.weights.get(weight.name)!);
    return await saveModel(config, options, { model, trunk, history, failures, lastVal, valProbabilities: lastValProbabilities });
  } finally {
    tf.dispose([...(best?.weights.values() ?? [])]);
    model.dispose();
    head.dispose();
    await trunk.dispose();
  }
}

async function saveModel(
  config: Config,
  options: TrainOptions,
  run: { model: tfl.LayersModel; trunk: Backbone; history: EpochRecord[]; failures: ImageError[]; lastVal: CachedFeatures; valProbabilities: Float32Array },
): Promise<TrainResult> {
  const { out } = options;
  const labels = Array.from(run.lastVal.valLabels);
  const probabilities = Array.from(run.valProbabilities);
  const choice = youdenThreshold(labels, probabilities);
  const atThreshold = ratesFromCounts(confusionFromPredictions(labels, predict(probabilities, choice.threshold)));
  await mkdir(out, { recursive: true });
  await saveTfjsLayersModel(run.model, join(out, 'tail'));
  const card: ModelCard = {
    format: MODEL_FORMAT,
    id: `${config.train.backbone}-${new Date().toISOString().replace(/[:.]/g, '-')}`,
    createdAt: new Date().toISOString(),
    backbone: { name: config.train.backbone, sourceSha256: sha256File(run.trunk.spec.source), fineTuneAt: config.train.fineTuneAt, inputSize: run.trunk.inputSize },
    imageSize: config.data.imageSize,
    threshold: choice.threshold,
    thresholdRule: "Youden's J on validation",
    classes: config.data.classes,
    validation: {
      loss: binaryCrossEntropy(run.lastVal.valLabels, run.valProbabilities),
      accuracy: atThreshold.accuracy,
      sensitivity: atThreshold.sensitivity,
      specificity: atThreshold.specificity,
      youdenJ: choice.j,
      images: labels.length,
    },
    seed: config.seed,
    disclaimer: DISCLAIMER,
  };
  await writeFile(join(out, 'model.json'), `${JSON.stringify(card, null, 2)}\n`);
  await writeFile(join(out, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  await writeFile(join(out, 'split.json'), `${JSON.stringify(options.manifest, null, 2)}\n`);
  await writeFile(join(out, 'history.json'), `${JSON.stringify(run.history, null, 2)}\n`);
  await writeFigure(join(out, 'training-history'), trainingHistorySvg(run.history));
  return { card, history: run.history, failures: run.failures, dir: out };
}
