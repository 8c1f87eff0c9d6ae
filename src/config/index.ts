/**
 * Every default of covid-ct lives here. The CLI, config files and the API read through `resolveConfig`,
 * so a value is changed in one place and validated in one place.
 */
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, resolve, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** `../shared` beside the project's root: data and weights that are never copied into the repository. */
export const SHARED_ROOT = resolve(PROJECT_ROOT, '..', 'shared');

export interface ClassSpec {
  /** Folder name inside a split folder. */
  name: string;
  /** 1 = positive (COVID), 0 = negative. */
  label: 0 | 1;
}

export interface DataConfig {
  /** Folder holding the datasets; see `resolveDataRoot` for the search order. */
  root: string | undefined;
  /** Dataset folder name under the root. */
  dataset: string;
  trainDir: string;
  testDir: string;
  classes: ClassSpec[];
  /** Images are resized to imageSize x imageSize (bilinear, aspect ratio not kept: "fill"). */
  imageSize: number;
  /** Images with more pixels are refused before decoding (decompression bombs, scanner mistakes). */
  maxPixels: number;
  /** Files larger than this many bytes are refused before reading. */
  maxFileBytes: number;
  /** Fraction of each class held out for validation by the splitters. */
  valFraction: number;
  /** Patient id from a file name when the dataset has no metadata.csv; first capture group. */
  patientRegex: string;
  /** Decoded-image cache folder. */
  cacheDir: string;
  /** Unreadable files are fatal instead of listed and skipped. */
  strict: boolean;
}

export interface AugmentConfig {
  horizontalFlip: boolean;
  verticalFlip: boolean;
  /** Rotation drawn in [-rotation, +rotation] of a full turn (0.05 = +-18 degrees). */
  rotation: number;
  /** Zoom factor drawn in [1 - zoom, 1 + zoom]. */
  zoom: number;
  /** Translation drawn in [-translation, +translation] of the width and height. */
  translation: number;
  /** Contrast factor drawn in [1 - contrast, 1 + contrast], around the image mean. */
  contrast: number;
}

export interface PhaseConfig {
  epochs: number;
  learningRate: number;
}

export interface TrainConfig {
  /** Backbone registry name, or a tfjs layers model.json path. */
  backbone: string;
  /** Weight file for backbones that take one (a Keras .h5 for efficientnet-b0); undefined = the registry's default. */
  weights: string | undefined;
  /** Backbone input side in pixels; undefined = the backbone's own (224 for the MobileNets). */
  inputSize: number | undefined;
  /** First layer (or block prefix) of the part unfrozen in phase 2; everything before it stays frozen. */
  fineTuneAt: string;
  /** Phase 1: backbone frozen, only the classifier head trains. */
  phase1: PhaseConfig;
  /** Phase 2: the layers from fineTuneAt on train too. */
  phase2: PhaseConfig;
  /** How many times phase 1 then phase 2 run. */
  rounds: number;
  /**
   * The pre-training stage's own schedule (rounds, phases, views): its validation loss is lowest early, so it
   * needs far fewer epochs than the main stage (see README, Results).
   */
  pretrainSchedule: { rounds: number; phase1: PhaseConfig; phase2: PhaseConfig; views: number };
  /** Dropout rate before the dense logit. */
  dropout: number;
  /**
   * Training targets become 1 - s/2 and s/2 instead of 1 and 0 (0 = off); metrics use the true labels. Default 0.1:
   * validation AUC up on each of 3 seeds over 0 (0.944 against 0.927), 0.2 lower (README, Regularisation).
   */
  labelSmoothing: number;
  /** Mixup's α on the cached trunk features (each example mixed with a batch partner, λ ~ Beta(α, α)); 0 = off. */
  mixup: number;
  /**
   * Stochastic weight averaging: the last phase 2 of a stage also offers the mean of its last N epochs' weights,
   * kept like any epoch when its validation loss is the lowest; 0 = off.
   */
  averageLast: number;
  /**
   * Refit: after the run that chooses the epoch on validation, train again from scratch with the same seed and
   * schedule on the training and validation images together, stopping after that epoch; the threshold and the
   * validation figures are the first run's (saved in `<out>/selection`). Default on: nested cross-validation by
   * source raised the held-out AUC on both fold assignments (+0.022 and +0.019, paired 95 % CIs above 0; README,
   * Nested cross-validation).
   */
  refit: boolean;
  /**
   * Augmented views cached per training image. The frozen trunk's output for K views of every image is
   * computed once per run; epoch e trains on view e mod K. With K = epochs every epoch sees a fresh view.
   */
  views: number;
  /** Threads sharing each phase-2 training batch (data-parallel worker_threads); 1 = the main thread only. Default: the cores, at most 4. */
  workers: number;
  /** Optional pre-training dataset (a folder name under the data root), trained with the same phases first. */
  pretrain: string | undefined;
  /** Training folder of the pre-training dataset (it has no train/test layout of its own). */
  pretrainDir: string;
  /** Threshold rule chosen on validation. */
  threshold: 'youden';
  /** Where runs go when --out is not given. */
  runsDir: string;
}

export interface MedicalConfig {
  /** Lung window (Hounsfield units): shows parenchyma, ground-glass and consolidation. */
  window: { level: number; width: number };
  /** 'fixed' uses `window`; 'file' uses the DICOM file's first Window Center/Width when present. */
  windowSource: 'fixed' | 'file';
  /** DICOM rows or columns above these are refused before any pixel buffer is allocated. */
  maxRows: number;
  maxColumns: number;
  /** Rows x columns above this are refused (a 4096 x 4096 slice is 64 MiB as Float32). */
  maxPixelsPerSlice: number;
  /** NIfTI volumes with more voxels are refused before reading the data (512 x 512 x 1500). */
  maxVoxels: number;
  /** Files larger than this are refused before reading (also the gunzip output cap for .nii.gz). */
  maxFileBytes: number;
  /**
   * A slice counts as axial when |cos| between its normal and the patient's head-foot axis is at least this
   * (0.8 is about 37 degrees: tilted-gantry CT is still axial, coronal and sagittal are not).
   */
  minAxialCosine: number;
}

export const PREDICT_FORMATS = ['csv', 'json'] as const;
export type PredictFormat = (typeof PREDICT_FORMATS)[number];

export interface PredictConfig {
  /** Study-level score of a DICOM series or NIfTI volume: the mean of its k highest slice probabilities. */
  topK: number;
  format: PredictFormat;
  /** Slices run through the model at once (bounds memory on long series). */
  batchSize: number;
  /** Grad-CAM overlays: heatmap opacity where the map is hottest (0 = invisible, 1 = opaque). */
  heatmapOpacity: number;
}

export interface EvaluateConfig {
  /**
   * Patient-level score in `evaluate` (when the metadata has patient_id): the mean of the patient's k highest slice
   * probabilities, or of all of them when the patient has fewer than k slices; the same rule as predict.topK for a
   * study.
   */
  patientTopK: number;
  /** Column of metadata.csv (else of provenance.csv beside it) whose values split slice-level results per source. */
  sourceColumn: string;
}

export interface ServeConfig {
  port: number;
  /** Loopback by default: exposing a research model on a network is a deliberate choice. */
  host: string;
  /** Uploads larger than this are refused with 413. */
  maxUploadBytes: number;
  /** Uploaded images with more pixels are refused from their header, before decoding. */
  maxPixels: number;
  /** Prediction log (SQLite); undefined = `predictions.sqlite` beside the model. */
  dbPath: string | undefined;
  /** Predictions waiting together are run as one batch of at most this many images. */
  maxBatch: number;
  /** Graceful shutdown waits this long for in-flight requests before closing connections. */
  shutdownTimeoutMs: number;
  /** Plain predictions run on a worker thread (a second copy of the model), so a batch never blocks the event loop. */
  predictionWorker: boolean;
}

export type SplitMethod = 'ordered' | 'patient' | 'official' | 'source';
export const SPLIT_METHODS: readonly SplitMethod[] = ['ordered', 'patient', 'official', 'source'];
/** The split methods that hold out whole groups, and so can make cross-validation folds. */
export const FOLD_SPLIT_METHODS: readonly SplitMethod[] = ['patient', 'source'];

/** Intensity normalisation from the image's own histogram (src/data/preprocess/intensity.ts). */
export type IntensityMode = 'none' | 'stretch';
export const INTENSITY_MODES: readonly IntensityMode[] = ['none', 'stretch'];

/** Preprocessing steps (src/data/preprocess/); each can be turned off, and the non-default ones wait for measurements. */
export interface PreprocessConfig {
  /** Luminance (BT.601) in all three channels: colour marks stop carrying the class. */
  grayscale: boolean;
  /** Re-encode training views of both classes as JPEG at a seeded random quality, so the container stops predicting the class. */
  jpegReencode: boolean;
  /** Inclusive quality range [min, max] of the re-encoding, 1-100. */
  jpegQuality: [number, number];
  /** Crop to the lungs found by classical segmentation (the whole image when none are plausible). */
  lungCrop: boolean;
  /** Margin around the lungs' bounding box, as a fraction of the image's width and height. */
  lungCropMargin: number;
  /** Intensity normalisation from the image's own histogram: 'stretch' (1st-99th luminance percentile to 0-255) or 'none'. */
  intensity: IntensityMode;
}

/** Where frozen forward passes run: ONNX Runtime (fast, native) or tfjs-wasm worker_threads (portable). */
export type ForwardEngineName = 'onnx' | 'wasm';
export const FORWARD_ENGINES: readonly ForwardEngineName[] = ['onnx', 'wasm'];
/** Test-time augmentation: 'flips' averages P(COVID) over the image and its horizontal and vertical mirrors. */
export type TtaMode = 'none' | 'flips';
export const TTA_MODES: readonly TtaMode[] = ['none', 'flips'];

export interface Config {
  seed: number;
  engine: ForwardEngineName;
  /**
   * Test-time augmentation of a trained model: `train` chooses the threshold on validation scores made with it and
   * records it in model.json; evaluate, predict and serve use the model's own unless --tta says otherwise.
   * Default 'flips': best on validation in the ablation (README).
   */
  tta: TtaMode;
  batchSize: number;
  split: SplitMethod;
  /**
   * Group k-fold cross-validation with split `patient` or `source`: whole groups go to `folds` folds, and fold
   * `fold` (1-based) is the validation side, in place of `data.valFraction`. 0 = off (one split).
   */
  folds: number;
  fold: number;
  data: DataConfig;
  augment: AugmentConfig;
  train: TrainConfig;
  medical: MedicalConfig;
  predict: PredictConfig;
  evaluate: EvaluateConfig;
  serve: ServeConfig;
  preprocess: PreprocessConfig;
}

export const DEFAULTS: Config = {
  seed: 42,
  engine: 'onnx',
  tta: 'flips',
  batchSize: 32,
  split: 'ordered',
  folds: 0,
  fold: 1,
  data: {
    root: undefined,
    dataset: 'covid-ct',
    trainDir: 'training-images',
    testDir: 'testing-images',
    classes: [
      { name: 'CT_COVID', label: 1 },
      { name: 'CT_NonCOVID', label: 0 },
    ],
    imageSize: 256,
    maxPixels: 50_000_000,
    maxFileBytes: 200 * 1024 * 1024,
    valFraction: 0.2,
    patientRegex: '^(\\d{4}\\.\\d{2}\\.\\d{2}\\.\\d+)-',
    cacheDir: join(PROJECT_ROOT, '.cache', 'images'),
    strict: false,
  },
  augment: {
    horizontalFlip: true,
    verticalFlip: true,
    rotation: 0.05,
    zoom: 0.05,
    translation: 0.05,
    contrast: 0.05,
  },
  train: {
    backbone: 'mobilenet-v2',
    weights: undefined,
    inputSize: undefined,
    fineTuneAt: 'block_16',
    phase1: { epochs: 10, learningRate: 1e-3 },
    phase2: { epochs: 30, learningRate: 1e-4 },
    rounds: 2,
    pretrainSchedule: { rounds: 1, phase1: { epochs: 10, learningRate: 1e-3 }, phase2: { epochs: 10, learningRate: 1e-4 }, views: 4 },
    dropout: 0.1,
    labelSmoothing: 0.1,
    mixup: 0,
    averageLast: 0,
    refit: true,
    views: 8,
    workers: Math.min(4, availableParallelism()),
    pretrain: undefined,
    pretrainDir: '.',
    threshold: 'youden',
    runsDir: join(PROJECT_ROOT, 'runs'),
  },
  medical: {
    window: { level: -600, width: 1500 },
    windowSource: 'fixed',
    maxRows: 4096,
    maxColumns: 4096,
    maxPixelsPerSlice: 4096 * 4096,
    maxVoxels: 512 * 512 * 1500,
    maxFileBytes: 2 * 1024 ** 3,
    minAxialCosine: 0.8,
  },
  predict: {
    topK: 5,
    format: 'csv',
    batchSize: 16,
    heatmapOpacity: 0.5,
  },
  evaluate: {
    patientTopK: 5,
    sourceColumn: 'source',
  },
  serve: {
    port: 8080,
    host: '127.0.0.1',
    maxUploadBytes: 20 * 1024 * 1024,
    maxPixels: 40_000_000,
    dbPath: undefined,
    maxBatch: 8,
    shutdownTimeoutMs: 10_000,
    predictionWorker: true,
  },
  preprocess: {
    grayscale: true,
    jpegReencode: true,
    jpegQuality: [60, 95],
    lungCrop: false,
    lungCropMargin: 0.05,
    intensity: 'none',
  },
};

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? (T[K] extends unknown[] ? T[K] : DeepPartial<T[K]>) : T[K] };

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Merges `override` into `base`, refusing keys the defaults do not have (a typo is an error, not a no-op). */
function merge<T>(base: T, override: unknown, path: string): T {
  if (override === undefined) return base;
  if (!isPlainObject(base)) return override as T;
  if (!isPlainObject(override)) throw new ConfigError(`config: ${path || 'root'} must be an object`);
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) {
    if (!(key in base)) {
      throw new ConfigError(
        `config: unknown option '${path ? `${path}.` : ''}${key}'; valid options: ${Object.keys(base).join(', ')}`,
      );
    }
    out[key] = merge((base as Record<string, unknown>)[key], value, path ? `${path}.${key}` : key);
  }
  return out as T;
}

function check(condition: boolean, option: string, expected: string, value: unknown): void {
  if (!condition) throw new ConfigError(`config: ${option} must be ${expected}, got ${JSON.stringify(value)}`);
}

export function validateConfig(config: Config): Config {
  const { data, augment } = config;
  check(Number.isInteger(config.seed), 'seed', 'an integer', config.seed);
  check(FORWARD_ENGINES.includes(config.engine), 'engine', `one of ${FORWARD_ENGINES.join(', ')}`, config.engine);
  check(TTA_MODES.includes(config.tta), 'tta', `one of ${TTA_MODES.join(', ')}`, config.tta);
  check(Number.isInteger(config.batchSize) && config.batchSize > 0, 'batchSize', 'a positive integer', config.batchSize);
  check(SPLIT_METHODS.includes(config.split), 'split', `one of ${SPLIT_METHODS.join(', ')}`, config.split);
  check(config.folds === 0 || (Number.isInteger(config.folds) && config.folds >= 2 && config.folds <= 20), 'folds', '0 (off) or an integer in [2, 20]', config.folds);
  if (config.folds > 0) {
    check(FOLD_SPLIT_METHODS.includes(config.split), 'split', `one of ${FOLD_SPLIT_METHODS.join(', ')} with folds (whole groups go to a fold)`, config.split);
    check(Number.isInteger(config.fold) && config.fold >= 1 && config.fold <= config.folds, 'fold', `an integer in [1, folds = ${config.folds}]`, config.fold);
  }
  check(Number.isInteger(data.imageSize) && data.imageSize >= 8 && data.imageSize <= 4096, 'data.imageSize', 'an integer in [8, 4096]', data.imageSize);
  check(data.valFraction > 0 && data.valFraction < 1, 'data.valFraction', 'in (0, 1)', data.valFraction);
  check(data.maxPixels > 0, 'data.maxPixels', 'positive', data.maxPixels);
  check(data.classes.length >= 2, 'data.classes', 'at least two classes', data.classes);
  check(new Set(data.classes.map((c) => c.name)).size === data.classes.length, 'data.classes', 'distinct names', data.classes);
  check(data.classes.some((c) => c.label === 1) && data.classes.some((c) => c.label === 0), 'data.classes', 'labels 0 and 1', data.classes);
  try {
    new RegExp(data.patientRegex);
  } catch {
    check(false, 'data.patientRegex', 'a valid regular expression', data.patientRegex);
  }
  for (const key of ['rotation', 'zoom', 'translation', 'contrast'] as const) {
    check(augment[key] >= 0 && augment[key] < 0.5, `augment.${key}`, 'in [0, 0.5)', augment[key]);
  }
  const { train } = config;
  // The main schedule and the pre-training stage's are checked alike.
  const checkSchedule = (path: string, schedule: Pick<TrainConfig, 'rounds' | 'phase1' | 'phase2' | 'views'>) => {
    for (const phase of ['phase1', 'phase2'] as const) {
      check(Number.isInteger(schedule[phase].epochs) && schedule[phase].epochs >= 0, `${path}.${phase}.epochs`, 'a non-negative integer', schedule[phase].epochs);
      check(schedule[phase].learningRate > 0 && schedule[phase].learningRate < 1, `${path}.${phase}.learningRate`, 'in (0, 1)', schedule[phase].learningRate);
    }
    check(Number.isInteger(schedule.rounds) && schedule.rounds >= 1, `${path}.rounds`, 'a positive integer', schedule.rounds);
    check(Number.isInteger(schedule.views) && schedule.views >= 1 && schedule.views <= 64, `${path}.views`, 'an integer in [1, 64]', schedule.views);
  };
  checkSchedule('train', train);
  checkSchedule('train.pretrainSchedule', train.pretrainSchedule);
  if (train.inputSize !== undefined) {
    check(Number.isInteger(train.inputSize) && train.inputSize >= 32 && train.inputSize <= 1024, 'train.inputSize', 'an integer in [32, 1024] (or unset: the backbone\'s own)', train.inputSize);
  }
  check(train.dropout >= 0 && train.dropout < 1, 'train.dropout', 'in [0, 1)', train.dropout);
  check(train.labelSmoothing >= 0 && train.labelSmoothing < 0.5, 'train.labelSmoothing', 'in [0, 0.5)', train.labelSmoothing);
  check(train.mixup >= 0 && train.mixup <= 10, 'train.mixup', 'in [0, 10] (0 = off)', train.mixup);
  check(Number.isInteger(train.averageLast) && train.averageLast >= 0 && train.averageLast <= train.phase2.epochs, 'train.averageLast', `an integer in [0, train.phase2.epochs = ${train.phase2.epochs}] (0 = off)`, train.averageLast);
  check(typeof train.refit === 'boolean', 'train.refit', 'true or false', train.refit);
  // The averaged weights belong to no single epoch, so a refit would have nowhere to stop.
  check(!(train.refit && train.averageLast > 0), 'train.refit', 'false when train.averageLast > 0 (averaged weights have no single epoch to stop a refit at; give --no-refit)', train.refit);
  check(Number.isInteger(train.workers) && train.workers >= 1 && train.workers <= 16, 'train.workers', 'an integer in [1, 16]', train.workers);
  check(train.threshold === 'youden', 'train.threshold', "'youden'", train.threshold);
  validateInferenceConfig(config);
  validatePreprocessConfig(config);
  return config;
}

function validatePreprocessConfig({ preprocess }: Config): void {
  check(INTENSITY_MODES.includes(preprocess.intensity), 'preprocess.intensity', `one of ${INTENSITY_MODES.join(', ')}`, preprocess.intensity);
  for (const key of ['grayscale', 'jpegReencode', 'lungCrop'] as const) {
    check(typeof preprocess[key] === 'boolean', `preprocess.${key}`, 'true or false', preprocess[key]);
  }
  const quality = preprocess.jpegQuality;
  check(
    Array.isArray(quality) && quality.length === 2 && quality.every((q) => Number.isInteger(q) && q >= 1 && q <= 100) && quality[0] <= quality[1],
    'preprocess.jpegQuality',
    'two integers [min, max] with 1 <= min <= max <= 100',
    quality,
  );
  check(preprocess.lungCropMargin >= 0 && preprocess.lungCropMargin < 0.5, 'preprocess.lungCropMargin', 'in [0, 0.5)', preprocess.lungCropMargin);
}

function positiveInteger(value: number): boolean {
  return Number.isInteger(value) && value > 0;
}

function validateInferenceConfig({ medical, predict, evaluate, serve }: Config): void {
  check(Number.isFinite(medical.window.level), 'medical.window.level', 'a number', medical.window.level);
  check(Number.isFinite(medical.window.width) && medical.window.width >= 1, 'medical.window.width', 'a number >= 1', medical.window.width);
  check(medical.windowSource === 'fixed' || medical.windowSource === 'file', 'medical.windowSource', "'fixed' or 'file'", medical.windowSource);
  for (const key of ['maxRows', 'maxColumns', 'maxPixelsPerSlice', 'maxVoxels', 'maxFileBytes'] as const) {
    check(positiveInteger(medical[key]), `medical.${key}`, 'a positive integer', medical[key]);
  }
  check(medical.minAxialCosine >= 0 && medical.minAxialCosine <= 1, 'medical.minAxialCosine', 'in [0, 1]', medical.minAxialCosine);
  check(positiveInteger(predict.topK), 'predict.topK', 'a positive integer', predict.topK);
  check(PREDICT_FORMATS.includes(predict.format), 'predict.format', `one of ${PREDICT_FORMATS.join(', ')}`, predict.format);
  check(positiveInteger(predict.batchSize) && predict.batchSize <= 256, 'predict.batchSize', 'an integer in [1, 256]', predict.batchSize);
  check(predict.heatmapOpacity >= 0 && predict.heatmapOpacity <= 1, 'predict.heatmapOpacity', 'in [0, 1]', predict.heatmapOpacity);
  check(positiveInteger(evaluate.patientTopK), 'evaluate.patientTopK', 'a positive integer', evaluate.patientTopK);
  check(typeof evaluate.sourceColumn === 'string' && evaluate.sourceColumn !== '', 'evaluate.sourceColumn', 'a column name', evaluate.sourceColumn);
  check(Number.isInteger(serve.port) && serve.port >= 0 && serve.port <= 65535, 'serve.port', 'an integer in [0, 65535]', serve.port);
  check(typeof serve.host === 'string' && serve.host !== '', 'serve.host', 'a host name or address', serve.host);
  check(positiveInteger(serve.maxUploadBytes), 'serve.maxUploadBytes', 'a positive integer', serve.maxUploadBytes);
  check(positiveInteger(serve.maxPixels), 'serve.maxPixels', 'a positive integer', serve.maxPixels);
  check(serve.dbPath === undefined || (typeof serve.dbPath === 'string' && serve.dbPath !== ''), 'serve.dbPath', 'a file path', serve.dbPath);
  check(positiveInteger(serve.maxBatch) && serve.maxBatch <= 64, 'serve.maxBatch', 'an integer in [1, 64]', serve.maxBatch);
  check(Number.isInteger(serve.shutdownTimeoutMs) && serve.shutdownTimeoutMs >= 0, 'serve.shutdownTimeoutMs', 'a non-negative integer', serve.shutdownTimeoutMs);
  check(typeof serve.predictionWorker === 'boolean', 'serve.predictionWorker', 'true or false', serve.predictionWorker);
}

/** Defaults, then a JSON config file, then explicit overrides (the CLI's flags). */
export function resolveConfig(overrides: DeepPartial<Config> = {}, configFile?: string): Config {
  let config = structuredClone(DEFAULTS);
  if (configFile) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(configFile, 'utf8'));
    } catch (error) {
      throw new ConfigError(`config file ${configFile}: ${(error as Error).message}`);
    }
    config = merge(config, parsed, '');
  }
  return validateConfig(merge(config, overrides, ''));
}

export class DataRootError extends Error {
  override name = 'DataRootError';
}

/**
 * The data root: `--data` (explicit), else COVID_CT_DATA, else ../shared/data when it exists.
 * A missing folder is one clear message saying where we looked and how to point elsewhere.
 */
export function resolveDataRoot(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  const [path, origin] = explicit
    ? [resolve(explicit), '--data']
    : env.COVID_CT_DATA
      ? [resolve(env.COVID_CT_DATA), 'COVID_CT_DATA']
      : [join(SHARED_ROOT, 'data'), 'default ../shared/data'];
  if (existsSync(path)) return path;
  throw new DataRootError(
    `data folder not found: ${path} (from ${origin}). Point covid-ct at your data with --data DIR or the COVID_CT_DATA environment variable.`,
  );
}
