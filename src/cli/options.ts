/** Flags shared by several commands, and their mapping onto the config module. */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import type { Config, DeepPartial } from '../config/index.ts';
import { resolveConfig, resolveDataRoot } from '../config/index.ts';
import { ImageCache } from '../data/cache.ts';
import { datasetPath } from '../data/dataset.ts';

export interface CommonFlags {
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
