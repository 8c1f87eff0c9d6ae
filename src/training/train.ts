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
import { join, relative } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { Config } from '../config/index.ts';
import type { ImageCache } from '../data/cache.ts';
import type { ImageRecord } from '../data/dataset.ts';
import type { ImageError } from '../data/errors.ts';
import { loadImages, mapLimit } from '../data/loader.ts';
import { imagePipeline } from '../data/pipeline.ts';
import { mirrorViews } from '../data/augment.ts';
import type { LoadedImage } from '../data/loader.ts';
import { Rng } from '../data/random.ts';
import type { SplitManifest } from '../data/split.ts';
import { buildTfjsModel, loadBackbone } from '../engine/backbone.ts';
import type { Backbone } from '../engine/backbone.ts';
import { initWasmBackend, registerTrainingKernels } from '../engine/kernels/index.ts';
import { sha256File } from '../engine/cache.ts';
import { saveTfjsLayersModel } from '../engine/tfjs-io.ts';
import { localBatchGradients, OnnxTail, runTailBatched, tailForward, TailWorkerPool, trainableVariables, UnsupportedTailError } from '../engine/train/index.ts';
import type { BatchGradientFn } from '../engine/train/index.ts';
import { confusionFromPredictions, predict, ratesFromCounts, rocAuc, youdenThreshold } from '../evaluation/metrics.ts';
import type { EpochMetrics, EpochRecord } from '../evaluation/plots.ts';
import { trainingHistorySvg } from '../evaluation/plots.ts';
import { writeFigure } from '../evaluation/report.ts';
import { Checkpoint, samePosition } from './checkpoint.ts';
import type { SchedulePosition } from './checkpoint.ts';
import { mixBatch } from './mixup.ts';
import { WeightAverage, type NamedTensors } from './weight-average.ts';
import { DISCLAIMER, meanOfViews, MODEL_FORMAT, sigmoid, trunkActivations } from '../inference/model.ts';
import type { ModelCard } from '../inference/model.ts';

export class TrainingError extends Error {
  override name = 'TrainingError';
}

export interface StageData {
  name: string;
  train: ImageRecord[];
  val: ImageRecord[];
  /** A pre-training stage runs `train.pretrainSchedule` instead of the main schedule. */
  pretraining?: boolean;
}

/** Rounds, phases and views of a stage. */
export function stageSchedule(stage: StageData, config: Config): Pick<Config['train'], 'rounds' | 'phase1' | 'phase2' | 'views'> {
  return stage.pretraining ? config.train.pretrainSchedule : config.train;
}

/** Every epoch of the run in order (stage, round, phase, epoch), up to `stopAfter` when given: for progress and ETA. */
export function schedulePositions(stages: readonly StageData[], config: Config, stopAfter?: SchedulePosition): SchedulePosition[] {
  const positions: SchedulePosition[] = [];
  for (const [stage, data] of stages.entries()) {
    const schedule = stageSchedule(data, config);
    for (let round = 1; round <= schedule.rounds; round++) {
      for (const phase of [1, 2] as const) {
        for (let epoch = 1; epoch <= schedule[phase === 1 ? 'phase1' : 'phase2'].epochs; epoch++) {
          const position = { stage, round, phase, epoch };
          positions.push(position);
          if (stopAfter && samePosition(position, stopAfter)) return positions;
        }
      }
    }
  }
  return positions;
}

export interface TrainProgress {
  (event: { stage: string; phase: 1 | 2; round: number; epoch: number; epochs: number; record: EpochRecord; seconds: number }): void;
}

/** Trunk activations of single training views, by stage, view, place in the list and file. */
export type TrunkMemo = Map<string, Float32Array>;

interface CachedFeatures {
  /** Trunk activations of view v of every training image (trainCount x activation size). */
  view(v: number): Promise<Float32Array>;
  views: number;
  trainLabels: Float32Array;
  val: Float32Array;
  /** With test-time augmentation 'flips', for the stage whose model is saved: the validation images' two mirrors. */
  valMirrors: Float32Array[];
  valLabels: Float32Array;
  valRecords: ImageRecord[];
}

async function loadAll(records: ImageRecord[], cache: ImageCache, config: Config, failures: ImageError[]): Promise<LoadedImage[]> {
  const result = await loadImages(records, cache, { size: config.data.imageSize, strict: config.data.strict });
  failures.push(...result.failures);
  return result.images;
}

/**
 * The trunk's activations for K augmented views of the training images and for the plain validation images.
 * View v is drawn from its own generator (seed, v), so it is the same pixels whether it is computed up front
 * (cached, the default) or again when an epoch needs it (`cacheViews: false`, used to test the cache).
 */
async function trunkFeatures(
  stage: StageData,
  trunk: Backbone,
  cache: ImageCache,
  config: Config,
  options: { cacheViews: boolean; choosesThreshold: boolean; memo: TrunkMemo | undefined },
  failures: ImageError[],
  log: (line: string) => void,
): Promise<CachedFeatures> {
  const { views } = stageSchedule(stage, config);
  const started = performance.now();
  const train = await loadAll(stage.train, cache, config, failures);
  const val = await loadAll(stage.val, cache, config, failures);
  if (train.length === 0 || val.length === 0) throw new TrainingError(`${stage.name}: no readable ${train.length === 0 ? 'training' : 'validation'} images`);
  const pipeline = imagePipeline(config.preprocess, config.augment);
  let fallbacks = 0;
  const prepare = (images: LoadedImage[]) => images.map((image) => pipeline.prepare(image, () => fallbacks++));
  const preparedTrain = prepare(train);
  let reused = 0;
  const compute = async (v: number) => {
    const rng = new Rng(config.seed * 7919 + v);
    // One generator per image, forked in order from this view's: the images can then be processed concurrently
    // (JPEG round trips run on libuv's threads) and still draw the same numbers.
    const generators = preparedTrain.map(() => rng.fork());
    // A view depends on the image and its place in the list (its generator): a run whose list starts with another's
    // (a refit: the selection run's images, then its validation images) reuses those.
    const key = (i: number) => `${stage.name}\0${v}\0${i}\0${train[i]!.record.path}`;
    const missing = preparedTrain.flatMap((_, i) => (options.memo?.has(key(i)) ? [] : [i]));
    const inputs = await mapLimit(missing, 4, (i) => pipeline.randomView(preparedTrain[i]!, generators[i]!));
    const computed = await trunkActivations(trunk, inputs, config.data.imageSize);
    if (!options.memo) return computed;
    const size = trunk.outputSize;
    missing.forEach((i, j) => options.memo!.set(key(i), computed.subarray(j * size, (j + 1) * size)));
    reused += preparedTrain.length - missing.length;
    const all = new Float32Array(preparedTrain.length * size);
    preparedTrain.forEach((_, i) => all.set(options.memo!.get(key(i))!, i * size));
    return all;
  };
  const cached: Float32Array[] = [];
  const { cacheViews } = options;
  if (cacheViews) for (let v = 0; v < views; v++) cached.push(await compute(v));
  const preparedVal = prepare(val);
  const valFeatures = await trunkActivations(trunk, preparedVal, config.data.imageSize);
  const valMirrors: Float32Array[] = [];
  // Only the saved model's threshold uses them: a pre-training stage's model is never saved, a refit keeps its
  // selection run's threshold.
  if (config.tta === 'flips' && !stage.pretraining && options.choosesThreshold) {
    const mirrored = preparedVal.map(mirrorViews);
    for (const mirror of [0, 1]) valMirrors.push(await trunkActivations(trunk, mirrored.map((views) => views[mirror]!), config.data.imageSize));
  }
  if (config.preprocess.lungCrop) log(`${stage.name}: lung crop fell back to the whole image for ${fallbacks} of ${train.length + val.length} images`);
  const reusedNote = reused > 0 ? ` (${reused} training views reused from the previous run)` : '';
  log(`${stage.name}: trunk activations for ${cacheViews ? views : 0} views of ${train.length} training and ${val.length} validation images in ${((performance.now() - started) / 1000).toFixed(1)} s${reusedNote}`);
  return {
    view: (v) => (cacheViews ? Promise.resolve(cached[v % views]!) : compute(v % views)),
    views,
    trainLabels: Float32Array.from(train, (i) => i.record.label),
    val: valFeatures,
    valMirrors,
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

/** The backbone options a training config sets (the trunk and the tail must agree on them). */
function graphOptions(config: Config): { weights?: string; inputSize?: number } {
  return { ...(config.train.weights && { weights: config.train.weights }), ...(config.train.inputSize !== undefined && { inputSize: config.train.inputSize }) };
}

export async function buildClassifier(config: Config): Promise<Classifier> {
  const backbone = await buildTfjsModel(config.train.backbone, { from: config.train.fineTuneAt, ...graphOptions(config) });
  const dropout = tfl.layers.dropout({ rate: config.train.dropout, name: 'head_dropout', seed: config.seed });
  const dense = tfl.layers.dense({ units: 1, name: 'head_logit', kernelInitializer: tfl.initializers.glorotUniform({ seed: config.seed }) });
  const model = tfl.model({ inputs: backbone.inputs, outputs: dense.apply(dropout.apply(backbone.outputs[0]!)) as tfl.SymbolicTensor, name: 'covid_ct_classifier' });
  const pooled = tfl.input({ shape: backbone.outputs[0]!.shape.slice(1) as number[], name: 'pooled_features' });
  const head = tfl.model({ inputs: pooled, outputs: dense.apply(dropout.apply(pooled)) as tfl.SymbolicTensor, name: 'covid_ct_head' });
  return { model, backbone, head };
}

export interface TrainResult {
  card: ModelCard;
  history: EpochRecord[];
  failures: ImageError[];
  dir: string;
  /** Why training stopped early (Ctrl-C, a non-finite loss); the best weights so far were saved. */
  stoppedEarly?: string;
}

export interface TrainOptions {
  out: string;
  manifest: SplitManifest;
  stages: StageData[];
  onEpoch?: TrainProgress;
  /** After every optimizer step: batches done and batches in this epoch (for a progress bar). */
  onBatch?: (done: number, total: number) => void;
  log?: (line: string) => void;
  /** Checked between epochs: when it returns true (Ctrl-C), the best weights so far are saved and training stops. */
  shouldStop?: () => boolean;
  /** Continue from the checkpoint in `out` (written after every epoch). */
  resume?: boolean;
  /** Start after the stages this checkpoint ended (a `Checkpoint.stageEnd`), from its weights and history. */
  startFrom?: Checkpoint;
  /** Training views' trunk activations kept across runs of one config and seed (a selection run and its refit). */
  trunkMemo?: TrunkMemo;
  /** Cache the trunk activations of every view up front (default); false recomputes them when an epoch needs them. */
  cacheViews?: boolean;
  /**
   * A refit: stop after this epoch and keep the weights there, not the best on validation (whose images the last
   * stage then trains on); the threshold and validation figures are the selection run's.
   */
  refit?: { stopAfter: SchedulePosition; selection: { dir: string; card: ModelCard } };
}

/**
 * A model's weights keyed by layer name and position. Not by getWeights() order (trainable weights come first,
 * and the phases change which are trainable), nor by variable name (tfjs adds a numeric suffix when a process
 * builds a second model with the same layer names).
 */
export function namedWeights(model: tfl.LayersModel): Map<string, tfl.LayerVariable> {
  return new Map(model.layers.flatMap((layer) => layer.weights.map((w, i) => [`${layer.name}/${i}`, w] as const)));
}

/** The weights kept so far (the lowest validation loss), with their validation scores. */
interface Checkpointed {
  loss: number;
  weights: NamedTensors;
  valProbabilities: Float32Array;
  /** Where in the schedule the weights were taken; absent for a weight average. */
  position?: SchedulePosition;
  /** Set when the weights are a weight average: which epochs. */
  averaged?: string;
}

/** The model's current weight tensors, not copies: read them before the next optimizer step. */
const currentWeights = (model: tfl.LayersModel): NamedTensors => new Map([...namedWeights(model)].map(([key, w]) => [key, w.read()]));

const snapshot = (model: tfl.LayersModel): NamedTensors => new Map([...currentWeights(model)].map(([key, w]) => [key, w.clone()]));

function restore(model: tfl.LayersModel, weights: NamedTensors): void {
  for (const [key, weight] of namedWeights(model)) {
    const value = weights.get(key);
    if (!value) throw new TrainingError(`checkpoint has no weight '${key}'`);
    weight.write(value);
  }
}

/** What trains one phase: gradients of a batch, probabilities of a feature set, and its release. */
interface PhaseEngine {
  gradients: BatchGradientFn;
  probabilities(features: Float32Array): Promise<Float32Array>;
  dispose(): Promise<void>;
}

/**
 * ONNX Runtime (engine 'onnx') where its tail graph covers every layer: native GEMMs, several times faster
 * than tfjs-wasm; otherwise tfjs-wasm, phase 2 data-parallel over worker_threads.
 */
async function phaseEngine(model: tfl.LayersModel, inputShape: number[], config: Config, phase: 1 | 2, once: (line: string) => void): Promise<PhaseEngine> {
  if (config.engine === 'onnx') {
    try {
      const tail = await OnnxTail.create(model, inputShape, { seed: config.seed });
      once(`phase ${phase}: trained on ONNX Runtime`);
      return {
        gradients: tail.batchGradients,
        probabilities: async (features) => (await tail.outputs(features)).map(sigmoid),
        dispose: () => tail.dispose(),
      };
    } catch (error) {
      if (!(error instanceof UnsupportedTailError)) throw error;
      once(`phase ${phase}: the ONNX tail graph does not cover ${error.message}; training on tfjs-wasm`);
    }
  }
  const pool = phase === 2 && config.train.workers > 1 ? await TailWorkerPool.create(model, config.train.workers - 1) : undefined;
  return {
    gradients: pool ? pool.batchGradients(model, inputShape) : localBatchGradients(model, inputShape),
    probabilities: async (features) => runTailBatched(model, features, inputShape).map(sigmoid),
    dispose: async () => pool?.terminate(),
  };
}

export async function train(config: Config, cache: ImageCache, options: TrainOptions): Promise<TrainResult> {
  const log = options.log ?? (() => {});
  const logged = new Set<string>();
  const logOnce = (line: string) => {
    if (!logged.has(line)) log(line);
    logged.add(line);
  };
  await initWasmBackend();
  registerTrainingKernels();
  const failures: ImageError[] = [];
  const trunk = await loadBackbone(config.train.backbone, { cut: config.train.fineTuneAt, engine: config.engine, ...graphOptions(config) });
  const { model, backbone, head } = await buildClassifier(config);
  const backboneLayers = new Set(backbone.layers.map((l) => l.name));
  const shape = trunk.outputShape;
  const checkpoint = new Checkpoint(options.out);
  await mkdir(options.out, { recursive: true });
  await writeFile(join(options.out, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  await writeFile(join(options.out, 'split.json'), `${JSON.stringify(options.manifest, null, 2)}\n`);

  let history: EpochRecord[] = [];
  let best: Checkpointed | undefined;
  let resumeFrom: ReturnType<Checkpoint['load']> | undefined;
  if (options.resume || options.startFrom) {
    if (options.resume && !checkpoint.exists()) throw new TrainingError(`--resume: no checkpoint in ${options.out}`);
    resumeFrom = (options.resume ? checkpoint : options.startFrom!).load();
    history = resumeFrom.state.history;
    restore(model, resumeFrom.weights);
    if (resumeFrom.best && resumeFrom.state.bestLoss !== null) {
      best = {
        loss: resumeFrom.state.bestLoss,
        weights: resumeFrom.best,
        valProbabilities: Float32Array.from(resumeFrom.state.bestValProbabilities),
        ...(resumeFrom.state.bestPosition && { position: resumeFrom.state.bestPosition }),
      };
    }
    const p = resumeFrom.state.position;
    log(
      options.resume
        ? `resuming after stage ${p.stage + 1} round ${p.round} phase ${p.phase} epoch ${p.epoch} (${history.length} epochs done)`
        : `stage ${p.stage + 2} starts from the weights stage ${p.stage + 1} ended with in ${options.startFrom!.dir} (${history.length} epochs not repeated)`,
    );
  }
  const before = (a: SchedulePosition, b: SchedulePosition) =>
    a.stage !== b.stage ? a.stage < b.stage : a.round !== b.round ? a.round < b.round : a.phase !== b.phase ? a.phase < b.phase : a.epoch < b.epoch;
  const stopAfter = options.refit?.stopAfter;
  const lastStage = options.stages.length - 1;
  if (stopAfter && stopAfter.stage !== lastStage) throw new TrainingError(`refit: the selected epoch is in stage ${stopAfter.stage + 1}, not in the last of ${options.stages.length}`);

  let lastVal: CachedFeatures | undefined;
  let stoppedEarly: string | undefined;
  const positions = schedulePositions(options.stages, config);
  const stageEnds = options.stages.map((_, i) => positions.filter((p) => p.stage === i).at(-1));
  /** The next stage (COVID-CT after pre-training) starts from this stage's best weights, saved for a refit to start from. */
  const endStage = (stageIndex: number, stageEpochs: number) => {
    if (!best) return;
    restore(model, best.weights);
    const end = stageEnds[stageIndex];
    if (stageIndex === lastStage || !end) return;
    Checkpoint.stageEnd(options.out, stageIndex).save(
      { position: end, stageEpochs, history, bestLoss: null, bestValProbabilities: [] },
      { weights: currentWeights(model), best: undefined, optimizer: new Map() },
    );
  };
  try {
    stages: for (const [stageIndex, stage] of options.stages.entries()) {
      const done = resumeFrom?.state.position;
      if (done && done.stage > stageIndex) continue;
      // A stage that is not the last and had finished is not entered again: its trunk cache would be computed for nothing.
      const end = stageEnds[stageIndex];
      if (done && end && stageIndex < lastStage && samePosition(done, end)) {
        endStage(stageIndex, resumeFrom!.state.stageEpochs);
        continue;
      }
      const featureOptions = { cacheViews: options.cacheViews ?? true, choosesThreshold: !options.refit, memo: stageIndex === lastStage ? options.trunkMemo : undefined };
      const features = await trunkFeatures(stage, trunk, cache, config, featureOptions, failures, log);
      lastVal = features;
      if (!(done && done.stage === stageIndex)) {
        tf.dispose([...(best?.weights.values() ?? [])]);
        best = undefined; // the weights kept are the best on this stage's validation set
      }
      const count = features.trainLabels.length;
      let stageEpochs = done && done.stage === stageIndex ? resumeFrom!.state.stageEpochs : 0;
      const schedule = stageSchedule(stage, config);
      for (let round = 1; round <= schedule.rounds; round++) {
        for (const phase of [1, 2] as const) {
          const settings = phase === 1 ? schedule.phase1 : schedule.phase2;
          const firstEpoch = done && done.stage === stageIndex && done.round === round && done.phase === phase ? done.epoch + 1 : 1;
          if (settings.epochs === 0 || (done && before({ stage: stageIndex, round, phase, epoch: settings.epochs }, done)) || firstEpoch > settings.epochs) continue;
          for (const layer of model.layers) layer.trainable = phase === 2 || !backboneLayers.has(layer.name);
          // Phase 1: the backbone part is frozen too, so its pooled output is computed once per phase
          // (per view) and only the head trains on it; phase 2 trains the whole tail on the trunk cache.
          const phaseStarted = performance.now();
          const trained = phase === 1 ? head : model;
          const inputShape = phase === 1 ? (head.inputs[0]!.shape.slice(1) as number[]) : [...shape];
          const pooled = new Map<number, Float32Array>();
          const pooler = phase === 1 ? await tailForward(backbone, shape, { engine: config.engine }) : undefined;
          const inputsOf = async (v: number): Promise<Float32Array> => {
            if (!pooler) return features.view(v);
            if (!pooled.has(v)) pooled.set(v, await pooler.run(await features.view(v)));
            return pooled.get(v)!;
          };
          const phaseVal = pooler ? await pooler.run(features.val) : features.val;
          const per = inputShape.reduce((a, b) => a * b, 1);
          const optimizer = tf.train.adam(settings.learningRate);
          const variables = trainableVariables(trained);
          if (firstEpoch > 1 && resumeFrom) {
            await optimizer.setWeights([...resumeFrom.optimizer].map(([name, tensor]) => ({ name, tensor })));
          }
          const engine = await phaseEngine(trained, inputShape, config, phase, logOnce);
          let setupSeconds = (performance.now() - phaseStarted) / 1000;
          // The last phase 2 of a stage also offers the mean of its last epochs' weights as a checkpoint.
          const averageFrom = phase === 2 && round === schedule.rounds && config.train.averageLast > 0 ? Math.max(1, settings.epochs - config.train.averageLast + 1) : Infinity;
          const average = new WeightAverage();
          try {
            for (let epoch = firstEpoch; epoch <= settings.epochs; epoch++) {
              const started = performance.now();
              const view = await inputsOf(stageEpochs % features.views);
              const rng = new Rng(config.seed * 1_000_003 + stageIndex * 10_007 + stageEpochs);
              stageEpochs++;
              const order = rng.shuffled(Array.from({ length: count }, (_, i) => i));
              for (let start = 0; start < count; start += config.batchSize) {
                const batch = order.slice(start, start + config.batchSize);
                const x = new Float32Array(batch.length * per);
                const y = new Float32Array(batch.length);
                batch.forEach((index, i) => {
                  x.set(view.subarray(index * per, (index + 1) * per), i * per);
                  y[i] = features.trainLabels[index]! * (1 - config.train.labelSmoothing) + config.train.labelSmoothing / 2;
                });
                const key = rng.nextUint32();
                // Mixup draws from its own stream (keyed by the batch), so runs without it are unchanged.
                const mixed = config.train.mixup > 0 ? mixBatch(x, y, per, config.train.mixup, new Rng((key ^ 0x9e3779b9) >>> 0)) : { x, y };
                const { loss, gradients: grads } = await engine.gradients(mixed.x, mixed.y, key);
                if (!Number.isFinite(loss)) {
                  tf.dispose(grads);
                  stoppedEarly = `${stage.name} round ${round} phase ${phase} epoch ${epoch}: the loss became ${loss}; training stopped and the best weights so far were kept`;
                  break stages;
                }
                optimizer.applyGradients(variables.map((variable, i) => ({ name: variable.name, tensor: grads[i]! })));
                tf.dispose(grads);
                options.onBatch?.(start / config.batchSize + 1, Math.ceil(count / config.batchSize));
              }
              const trainProbabilities = await engine.probabilities(view);
              const valProbabilities = await engine.probabilities(phaseVal);
              const record: EpochRecord = {
                phase: options.stages.length > 1 ? `${stage.name} ${phase}` : phase,
                round,
                epoch,
                train: epochMetrics(features.trainLabels, trainProbabilities, binaryCrossEntropy(features.trainLabels, trainProbabilities)),
                val: epochMetrics(features.valLabels, valProbabilities, binaryCrossEntropy(features.valLabels, valProbabilities)),
              };
              // Weights gone non-finite show in the epoch's predictions even when the last batch loss did not.
              if (!Number.isFinite(record.train.loss) || !Number.isFinite(record.val!.loss)) {
                stoppedEarly = `${stage.name} round ${round} phase ${phase} epoch ${epoch}: the loss became ${Number.isFinite(record.train.loss) ? record.val!.loss : record.train.loss}; training stopped and the best weights so far were kept`;
                break stages;
              }
              history.push(record);
              if (epoch >= averageFrom) average.add(currentWeights(model));
              const position: SchedulePosition = { stage: stageIndex, round, phase, epoch };
              // A refit's last stage keeps the weights where it stops; its validation images are trained on.
              const refitting = stopAfter?.stage === stageIndex;
              if (!best || refitting || record.val!.loss < best.loss) {
                tf.dispose([...(best?.weights.values() ?? [])]);
                best = { loss: record.val!.loss, weights: snapshot(model), valProbabilities, position };
              }
              const optimizerWeights = new Map((await optimizer.getWeights()).map((w) => [w.name, w.tensor]));
              checkpoint.save(
                { position, stageEpochs, history, bestLoss: best.loss, bestValProbabilities: Array.from(best.valProbabilities), ...(best.position && { bestPosition: best.position }) },
                { weights: currentWeights(model), best: best.weights, optimizer: optimizerWeights },
              );
              options.onEpoch?.({ stage: stage.name, phase, round, epoch, epochs: settings.epochs, record, seconds: (performance.now() - started) / 1000 + setupSeconds });
              setupSeconds = 0;
              if (stopAfter && !before(position, stopAfter)) break stages;
              if (options.shouldStop?.()) {
                stoppedEarly = `interrupted after ${stage.name} round ${round} phase ${phase} epoch ${epoch}; the best weights so far were kept (continue with --resume)`;
                break stages;
              }
            }
            // A run resumed inside the averaged epochs averages only those it ran: the label says which.
            const averagedFrom = Math.max(averageFrom, firstEpoch);
            if (average.count > 0) best = await offerAverage(model, average, shape, features, best, config, log, `${stage.name} round ${round} phase 2 epochs ${averagedFrom}-${settings.epochs}`);
          } finally {
            average.dispose();
            optimizer.dispose();
            await Promise.all([engine.dispose(), pooler?.dispose()]);
          }
        }
      }
      endStage(stageIndex, stageEpochs);
    }
    if (!best || !lastVal) throw new TrainingError(stoppedEarly ?? 'no epoch finished: nothing to save');
    restore(model, best.weights);
    if (stopAfter && stoppedEarly) throw new TrainingError(`refit stopped before its selected epoch: ${stoppedEarly.split(';')[0]}; no model saved (continue with --resume)`);
    if (stopAfter && (!best.position || before(best.position, stopAfter))) throw new TrainingError('refit: the schedule ended before the selected epoch');
    const kept = best.position && { stage: options.stages[best.position.stage]!.name, round: best.position.round, phase: best.position.phase, epoch: best.position.epoch };
    const result = await saveModel(config, options, { model, trunk, history, failures, lastVal, valProbabilities: best.valProbabilities, weightAverage: best.averaged, kept });
    return stoppedEarly ? { ...result, stoppedEarly } : result;
  } finally {
    tf.dispose([...(best?.weights.values() ?? [])]);
    model.dispose();
    head.dispose();
    await trunk.dispose();
  }
}

/**
 * Puts the averaged weights to the same test as every epoch: they replace the best checkpoint when their
 * validation loss is lower. The model's own weights are left as they were.
 */
async function offerAverage(
  model: tfl.LayersModel,
  average: WeightAverage,
  shape: readonly number[],
  features: CachedFeatures,
  best: Checkpointed | undefined,
  config: Config,
  log: (line: string) => void,
  span: string,
): Promise<Checkpointed | undefined> {
  const current = snapshot(model);
  const averaged = average.mean();
  restore(model, averaged);
  const tail = await tailForward(model, shape, { engine: config.engine, map: sigmoid });
  let valProbabilities: Float32Array;
  try {
    valProbabilities = await tail.run(features.val);
  } finally {
    await tail.dispose();
    restore(model, current);
    tf.dispose([...current.values()]);
  }
  const loss = binaryCrossEntropy(features.valLabels, valProbabilities);
  const kept = !best || loss < best.loss;
  log(`weight average of ${span}: validation loss ${loss.toFixed(4)} against the best epoch's ${best ? best.loss.toFixed(4) : 'none'}: ${kept ? 'kept' : 'not kept'}`);
  if (!kept) {
    tf.dispose([...averaged.values()]);
    return best;
  }
  tf.dispose([...(best?.weights.values() ?? [])]);
  return { loss, weights: averaged, valProbabilities, averaged: span };
}

interface FinishedRun {
  model: tfl.LayersModel;
  trunk: Backbone;
  history: EpochRecord[];
  failures: ImageError[];
  lastVal: CachedFeatures;
  valProbabilities: Float32Array;
  weightAverage: string | undefined;
  kept: ModelCard['checkpoint'];
}

const modelId = (config: Config) => `${config.train.backbone}-${new Date().toISOString().replace(/[:.]/g, '-')}`;

/**
 * The card of a run that chose its weights on validation: the threshold by Youden's J on the scores inference
 * will produce (with TTA, the mean over the image and its mirrors; the best epoch itself was chosen on the plain
 * validation loss), and the per-image validation scores behind it.
 */
async function validatedCard(config: Config, run: FinishedRun): Promise<{ card: ModelCard; rows: Array<{ path: string; label: number; probability: number }> }> {
  const labels = Array.from(run.lastVal.valLabels);
  const views = [run.valProbabilities];
  const tail = await tailForward(run.model, run.trunk.outputShape, { engine: config.engine, map: sigmoid });
  try {
    for (const mirror of run.lastVal.valMirrors) views.push(await tail.run(mirror));
  } finally {
    await tail.dispose();
  }
  const valProbabilities = meanOfViews(views);
  const probabilities = Array.from(valProbabilities);
  const choice = youdenThreshold(labels, probabilities);
  const atThreshold = ratesFromCounts(confusionFromPredictions(labels, predict(probabilities, choice.threshold)));
  const card: ModelCard = {
    format: MODEL_FORMAT,
    id: modelId(config),
    createdAt: new Date().toISOString(),
    backbone: { name: config.train.backbone, source: run.trunk.spec.source, sourceSha256: sha256File(run.trunk.spec.source), fineTuneAt: config.train.fineTuneAt, inputSize: run.trunk.inputSize },
    imageSize: config.data.imageSize,
    preprocess: config.preprocess,
    threshold: choice.threshold,
    thresholdRule: `Youden's J on validation${config.tta === 'none' ? '' : ` (scores with test-time augmentation '${config.tta}')`}`,
    tta: config.tta,
    classes: config.data.classes,
    validation: {
      loss: binaryCrossEntropy(run.lastVal.valLabels, valProbabilities),
      accuracy: atThreshold.accuracy,
      sensitivity: atThreshold.sensitivity,
      specificity: atThreshold.specificity,
      youdenJ: choice.j,
      auc: rocAuc(labels, probabilities),
      images: labels.length,
    },
    seed: config.seed,
    disclaimer: DISCLAIMER,
    ...(run.kept && { checkpoint: run.kept }),
    ...(run.weightAverage && { weightAverage: run.weightAverage }),
  };
  const rows = run.lastVal.valRecords.map((r, i) => ({ path: r.relPath, label: r.label, probability: valProbabilities[i]! }));
  return { card, rows };
}

async function saveModel(config: Config, options: TrainOptions, run: FinishedRun): Promise<TrainResult> {
  const { out } = options;
  // A refit has no held-out images of its own: its threshold and validation figures are the selection run's.
  const { card, rows } = options.refit
    ? {
        card: {
          ...options.refit.selection.card,
          id: modelId(config),
          createdAt: new Date().toISOString(),
          checkpoint: run.kept,
          refit: { selection: relative(out, options.refit.selection.dir), trainImages: options.stages.at(-1)!.train.length },
        },
        rows: undefined,
      }
    : await validatedCard(config, run);
  await mkdir(out, { recursive: true });
  await saveTfjsLayersModel(run.model, join(out, 'tail'));
  await writeFile(join(out, 'model.json'), `${JSON.stringify(card, null, 2)}\n`);
  await writeFile(join(out, 'history.json'), `${JSON.stringify(run.history, null, 2)}\n`);
  // Per-image validation scores of the kept weights: the threshold's evidence, and material for probes and ensembles.
  if (rows) await writeFile(join(out, 'validation-predictions.json'), `${JSON.stringify(rows, null, 2)}\n`);
  await writeFigure(join(out, 'training-history'), trainingHistorySvg(run.history));
  return { card, history: run.history, failures: run.failures, dir: out };
}
