/** Flags shared by several commands, and their mapping onto the config module. */
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import type { Config, DeepPartial, ForwardEngineName, TtaMode } from '../config/index.ts';
import { FORWARD_ENGINES, resolveConfig, resolveDataRoot, TTA_MODES } from '../config/index.ts';
import { ImageCache } from '../data/cache.ts';
import { datasetPath } from '../data/dataset.ts';

export const engineOption = () => new Option('--engine <engine>', 'onnx (default): ONNX Runtime for forward passes and tail training; wasm: tfjs-wasm worker_threads, no native library').choices(FORWARD_ENGINES as ForwardEngineName[]);
export const ttaOption = () => new Option('--tta <mode>', "test-time augmentation (default: the model's own, chosen at training)").choices(TTA_MODES as TtaMode[]);

/** --engine and --tta, for every command that runs a model. */
export function addModelFlags(command: Command): Command {
  return command.addOption(engineOption()).addOption(ttaOption());
}

export function modelOverrides(flags: { engine?: ForwardEngineName; tta?: TtaMode }): DeepPartial<Config> {
  return { ...(flags.engine && { engine: flags.engine }), ...(flags.tta && { tta: flags.tta }) };
}

/** Group k-fold cross-validation (train and data split): config `folds` and `fold`. */
export function addFoldFlags(command: Command): Command {
  return command
    .option('--folds <k>', 'cross-validation with split patient or source: whole groups dealt into k folds, one of them held out', integer('--folds'))
    .option('--fold <i>', 'the fold held out for validation, 1..k', integer('--fold'));
}

export function foldOverrides(flags: { folds?: number; fold?: number }): DeepPartial<Config> {
  return { ...(flags.folds !== undefined && { folds: flags.folds }), ...(flags.fold !== undefined && { fold: flags.fold }) };
}

export interface CommonFlags {
  engine?: ForwardEngineName;
  tta?: TtaMode;
  data?: string;
  config?: string;
  seed?: number;
  strict?: boolean;
  size?: number;
}

export function integer(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n)) throw new InvalidArgumentError(`${name} must be an integer, got '${value}'`);
    return n;
  };
}

export function number(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number, got '${value}'`);
    return n;
  };
}

export function addCommonFlags(command: Command): Command {
  return command
    .option('--data <dir>', 'folder holding the datasets (else $COVID_CT_DATA, else ../shared/data)')
    .option('--config <file>', 'JSON config file (see src/config/index.ts for every option)')
    .option('--seed <n>', 'random seed', integer('--seed'))
    .option('--size <px>', 'decoded image size (square)', integer('--size'))
    .option('--strict', 'unreadable images are fatal instead of listed and skipped');
}

export interface Context {
  config: Config;
  datasetDir: string;
  cache: ImageCache;
}

/** Resolves the config (defaults < config file < flags), the dataset folder and the image cache. */
export function context(flags: CommonFlags, overrides: DeepPartial<Config> = {}): Context {
  const config = resolveConfig(
    {
      ...overrides,
      ...modelOverrides(flags),
      ...(flags.seed !== undefined && { seed: flags.seed }),
      data: {
        ...overrides.data,
        ...(flags.size !== undefined && { imageSize: flags.size }),
        ...(flags.strict !== undefined && { strict: flags.strict }),
      },
    },
    flags.config,
  );
  const datasetDir = datasetPath(resolveDataRoot(flags.data), config);
  return { config, datasetDir, cache: new ImageCache(config.data.cacheDir, config.data) };
}
