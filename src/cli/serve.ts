import { join, resolve } from 'node:path';
import { Command } from 'commander';
import type { Config, DeepPartial } from '../config/index.ts';
import { resolveConfig } from '../config/index.ts';
import type { WindowSetting } from '../data/medical/index.ts';
import { DISCLAIMER, loadModel } from '../inference/model.ts';
import { buildServer } from '../serving/app.ts';
import { PredictionLog } from '../serving/log.ts';
import { engineOption, integer, modelOverrides, ttaOption } from './options.ts';
import type { ForwardEngineName, TtaMode } from '../config/index.ts';
import { parseWindow } from './predict.ts';

interface ServeFlags {
  engine?: ForwardEngineName;
  tta?: TtaMode;
  model: string;
  port?: number;
  host?: string;
  db?: string;
  maxUploadBytes?: number;
  window?: WindowSetting;
  config?: string;
}

/**
 * Stops taking new requests, lets the ones in flight finish (at most `timeoutMs`, then open connections are
 * closed), then closes the log and the model.
 */
export async function shutdown(app: { close(): Promise<unknown>; server: { closeAllConnections(): void } }, timeoutMs: number, after: () => Promise<void>): Promise<void> {
  const timer = setTimeout(() => app.server.closeAllConnections(), timeoutMs);
  try {
    await app.close();
  } finally {
    clearTimeout(timer);
    await after();
  }
}

export function serveCommand(): Command {
  return new Command('serve')
    .description(`web page and JSON API for a trained model, with a SQLite prediction log. ${DISCLAIMER}`)
    .requiredOption('--model <dir>', 'model directory written by train')
    .option('--port <n>', 'TCP port (default 8080; 0 = any free port)', integer('--port'))
    .option('--host <address>', 'address to listen on (default 127.0.0.1, loopback only)')
    .option('--db <file>', 'prediction log, SQLite (default <model>/predictions.sqlite)')
    .option('--max-upload-bytes <n>', 'largest accepted upload (default 20 MB)', integer('--max-upload-bytes'))
    .option('--window <window>', "DICOM window: 'file' or LEVEL,WIDTH in HU (default -600,1500)", parseWindow)
    .option('--config <file>', 'JSON config file (see src/config/index.ts)')
    .addOption(engineOption())
    .addOption(ttaOption())
    .action(async (flags: ServeFlags) => {
      const overrides: DeepPartial<Config> = {
        serve: {
          ...(flags.port !== undefined && { port: flags.port }),
          ...(flags.host && { host: flags.host }),
          ...(flags.db && { dbPath: resolve(flags.db) }),
          ...(flags.maxUploadBytes !== undefined && { maxUploadBytes: flags.maxUploadBytes }),
        },
        ...(flags.window && typeof flags.window === 'object' && { medical: { window: flags.window, windowSource: 'fixed' as const } }),
        ...(flags.window === 'file' && { medical: { windowSource: 'file' as const } }),
      };
      const config = resolveConfig({ ...overrides, ...modelOverrides(flags) }, flags.config);
      const modelDir = resolve(flags.model);
      const model = await loadModel(modelDir, { engine: config.engine, ...(flags.tta && { tta: flags.tta }) });
      const log = new PredictionLog(config.serve.dbPath ?? join(modelDir, 'predictions.sqlite'));
      const app = await buildServer({ model, config, log });
      const address = await app.listen({ port: config.serve.port, host: config.serve.host });
      console.log(`covid-ct serving model ${model.card.id} at ${address} (log: ${log.path}). ${DISCLAIMER}`);
      await new Promise<void>((done) => {
        let stopping = false;
        const stop = (signal: NodeJS.Signals) => {
          if (stopping) return;
          stopping = true;
          console.log(`${signal}: finishing requests in flight, then stopping`);
          void shutdown(app, config.serve.shutdownTimeoutMs, async () => {
            log.close();
            await model.dispose();
          }).finally(() => {
            process.off('SIGINT', stop);
            process.off('SIGTERM', stop);
            done();
          });
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
