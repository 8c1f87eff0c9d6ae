/**
 * Every default of covid-ct lives here. The CLI, config files and the API read through `resolveConfig`,
 * so a value is changed in one place and validated in one place.
 */
import { existsSync, readFileSync } from 'node:fs';
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
  /** First layer (or block prefix) of the part unfrozen in phase 2; everything before it stays frozen. */
  fineTuneAt: string;
  /** Phase 1: backbone frozen, only the classifier head trains. */
  phase1: PhaseConfig;
  /** Phase 2: the layers from fineTuneAt on train too. */
  phase2: PhaseConfig;
  /** How many times phase 1 then phase 2 run. */
  rounds: number;
  dropout: number;
  /**
   * Augmented views cached per training image. The frozen trunk's output for K views of every image is
   * computed once per run; epoch e trains on view e mod K. With K = epochs every epoch sees a fresh view.
   */
  views: number;
  /** Optional pre-training dataset (a folder name under the data root), trained with the same phases first. */
  pretrain: string | undefined;
  /** Training folder of the pre-training dataset (it has no train/test layout of its own). */
  pretrainDir: string;
  /** Threshold rule chosen on validation. */
  threshold: 'youden';
  /** Where runs go when --out is not given. */
  runsDir: string;
}

export type SplitMethod = 'ordered' | 'patient' | 'official';
export const SPLIT_METHODS: readonly SplitMethod[] = ['ordered', 'patient', 'official'];

export interface Config {
  seed: number;
  batchSize: number;
  split: SplitMethod;
  data: DataConfig;
  augment: AugmentConfig;
  train: TrainConfig;
}

export const DEFAULTS: Config = {
  seed: 42,
  batchSize: 32,
  split: 'ordered',
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
    fineTuneAt: 'block_16',
    phase1: { epochs: 10, learningRate: 1e-3 },
    phase2: { epochs: 30, learningRate: 1e-4 },
    rounds: 2,
    dropout: 0.1,
    views: 8,
    pretrain: undefined,
    pretrainDir: '.',
    threshold: 'youden',
    runsDir: join(PROJECT_ROOT, 'runs'),
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
  check(Number.isInteger(config.batchSize) && config.batchSize > 0, 'batchSize', 'a positive integer', config.batchSize);
  check(SPLIT_METHODS.includes(config.split), 'split', `one of ${SPLIT_METHODS.join(', ')}`, config.split);
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
  for (const phase of ['phase1', 'phase2'] as const) {
    check(Number.isInteger(train[phase].epochs) && train[phase].epochs >= 0, `train.${phase}.epochs`, 'a non-negative integer', train[phase].epochs);
    check(train[phase].learningRate > 0 && train[phase].learningRate < 1, `train.${phase}.learningRate`, 'in (0, 1)', train[phase].learningRate);
  }
  check(Number.isInteger(train.rounds) && train.rounds >= 1, 'train.rounds', 'a positive integer', train.rounds);
  check(train.dropout >= 0 && train.dropout < 1, 'train.dropout', 'in [0, 1)', train.dropout);
  check(Number.isInteger(train.views) && train.views >= 1 && train.views <= 64, 'train.views', 'an integer in [1, 64]', train.views);
  check(train.threshold === 'youden', 'train.threshold', "'youden'", train.threshold);
  return config;
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
  const candidates: Array<[string, string]> = [];
  if (explicit) candidates.push([resolve(explicit), '--data']);
  else if (env.COVID_CT_DATA) candidates.push([resolve(env.COVID_CT_DATA), 'COVID_CT_DATA']);
  else candidates.push([join(SHARED_ROOT, 'data'), 'default ../shared/data']);
  const [path, origin] = candidates[0]!;
  if (existsSync(path)) return path;
  throw new DataRootError(
    `data folder not found: ${path} (from ${origin}). Point covid-ct at your data with --data DIR or the COVID_CT_DATA environment variable.`,
  );
}
