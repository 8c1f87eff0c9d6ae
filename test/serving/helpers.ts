/** A served tiny model on a free loopback port, and upload helpers. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { resolveConfig } from '../../src/config/index.ts';
import type { Config, DeepPartial } from '../../src/config/index.ts';
import type { LoadedModel } from '../../src/inference/model.ts';
import type { PredictionReport } from '../../src/inference/predict.ts';
import { buildServer } from '../../src/serving/app.ts';
import { PredictionLog } from '../../src/serving/log.ts';
import { tempDir } from '../data/fixtures.ts';

/** A prediction, or an error's { error, message }. */
export type ApiBody = PredictionReport & { latencyMs: number; error?: string; message?: string };

export interface Served {
  app: FastifyInstance;
  url: string;
  log: PredictionLog;
  close(): Promise<void>;
}

export async function serve(model: LoadedModel, overrides: DeepPartial<Config> = {}, predictBatch?: LoadedModel['predict']): Promise<Served> {
  const config = resolveConfig(overrides);
  const log = new PredictionLog(join(tempDir('covid-ct-log-'), 'predictions.sqlite'));
  const app = await buildServer({ model, config, log, ...(predictBatch && { predictBatch }) });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    app,
    url,
    log,
    async close() {
      await app.close();
      log.close();
    },
  };
}

export async function upload(url: string, bytes: Uint8Array | string, name: string, query = ''): Promise<{ status: number; body: ApiBody }> {
  const data = typeof bytes === 'string' ? readFileSync(bytes) : bytes;
  const form = new FormData();
  form.append('file', new Blob([Uint8Array.from(data)]), name);
  const response = await fetch(`${url}/api/predict${query}`, { method: 'POST', body: form });
  return { status: response.status, body: (await response.json()) as ApiBody };
}
