/**
 * The covid-ct web server: a page, a JSON API and a prediction log.
 *   GET  /                    the page (drop or pick an image or DICOM file)
 *   POST /api/predict         multipart, one file field; ?explain=true adds a Grad-CAM overlay (data: URL)
 *   GET  /api/health          liveness and the model id
 *   GET  /api/model           the model card, limits and disclaimer
 *   GET  /api/predictions     the newest logged predictions (?limit=1..1000, default 50)
 *   GET  /report              the model's evaluation report, when it has one
 * Uploads are recognised by content (never by name or Content-Type) and size-limited; no part of a request is
 * ever used as a file path. Errors are JSON: { error, message } with a 4xx status for the client's mistakes.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import multipart from '@fastify/multipart';
import Fastify from 'fastify';
import type { FastifyError, FastifyInstance } from 'fastify';
import type { Config } from '../config/index.ts';
import { ImageError } from '../data/errors.ts';
import { MedicalImageError } from '../data/medical/index.ts';
import type { WindowSetting } from '../data/medical/index.ts';
import { studyFromBytes } from '../inference/inputs.ts';
import { DISCLAIMER } from '../inference/model.ts';
import type { LoadedModel } from '../inference/model.ts';
import { predictStudies } from '../inference/predict.ts';
import type { PredictionLog } from './log.ts';
import { pageHtml } from './page.ts';
import { ModelRunner } from './runner.ts';
import { PredictionWorker } from './worker-model.ts';

export interface ServerOptions {
  model: LoadedModel;
  config: Config;
  log: PredictionLog;
  /** Replaces model.predict for plain predictions (tests use it to slow requests down). */
  predictBatch?: LoadedModel['predict'];
  /** Fastify's request logger; off by default (the prediction log is the record). */
  logger?: boolean;
}

/** A client error with its HTTP status and a short machine-readable code. */
export class RequestError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const UNSUPPORTED = 'not an image, DICOM or NIfTI file (recognised by content, not by name)';

/** Maps an input error to the status the client should see: too big 413, unknown type 415, unreadable 422. */
function inputError(error: ImageError | MedicalImageError): RequestError {
  if (error.reason === UNSUPPORTED || (error instanceof MedicalImageError && error.code === 'unsupported-syntax')) {
    return new RequestError(415, 'unsupported-type', error.reason);
  }
  if ((error instanceof MedicalImageError && error.code === 'too-large') || /too many pixels|too large/.test(error.reason)) {
    return new RequestError(413, 'too-large', error.reason);
  }
  return new RequestError(422, 'unreadable', error.reason);
}

/** A display name for an upload: the last path segment, printable characters only. Never opened. */
function uploadName(filename: string | undefined): string {
  const last = (filename ?? '').split(/[\\/]/).pop() ?? '';
  const clean = last.replace(/[^\w.\- ]+/g, '_').slice(0, 120);
  return clean || 'upload';
}

export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  const { model, config, log } = options;
  const limits = config.serve;
  const worker = options.predictBatch || !limits.predictionWorker ? undefined : await PredictionWorker.start(model);
  // Should the worker die, the server's own copy of the model takes over.
  const runner = new ModelRunner(options.predictBatch ?? ((images) => (worker && !worker.failed ? worker.predict(images) : model.predict(images))), limits.maxBatch);
  const window: WindowSetting = config.medical.windowSource === 'file' ? 'file' : config.medical.window;
  const reportPath = join(model.dir, 'evaluation', 'report.html');

  const app = Fastify({ logger: options.logger ?? false, forceCloseConnections: 'idle', return503OnClosing: true });
  // While closing, answers in flight also close their connection: an idle keep-alive socket would otherwise
  // hold shutdown open until it times out.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  // After the last request has been answered.
  app.addHook('onClose', async () => {
    await worker?.close();
  });
  app.addHook('onSend', async (_request, reply, payload) => {
    if (closing) void reply.header('connection', 'close');
    return payload;
  });
  await app.register(multipart, { limits: { fileSize: limits.maxUploadBytes, files: 1, fields: 4, parts: 5 } });

  app.setErrorHandler((error: FastifyError | RequestError, _request, reply) => {
    const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500;
    const code = error instanceof RequestError ? error.code : status === 413 ? 'too-large' : status === 406 || status === 415 ? 'unsupported-type' : status >= 500 ? 'internal' : 'bad-request';
    const message = status === 413 && !(error instanceof RequestError) ? `upload larger than the limit of ${limits.maxUploadBytes} bytes` : status >= 500 ? 'internal error' : error.message;
    if (status >= 500) app.log.error(error);
    // 406 is what the multipart plugin says for a non-multipart body; for an upload API that is 415.
    void reply.status(status === 406 ? 415 : status).send({ error: code, message });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({ error: 'not-found', message: `no route ${request.method} ${request.url.split('?')[0]}` });
  });

  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(pageHtml()));

  app.get('/api/health', async () => ({ status: 'ok', model: model.card.id, disclaimer: DISCLAIMER }));

  app.get('/api/model', async () => ({
    card: model.card,
    disclaimer: DISCLAIMER,
    limits: `${DISCLAIMER} Trained on 2D axial chest CT slices (COVID-CT); not validated on other scanners, sites, views or patients. Uploads up to ${limits.maxUploadBytes} bytes and ${limits.maxPixels} pixels.`,
    report: existsSync(reportPath) ? '/report' : null,
    uploadLimitBytes: limits.maxUploadBytes,
    maxPixels: limits.maxPixels,
  }));

  app.get('/report', async (_request, reply) => {
    if (!existsSync(reportPath)) throw new RequestError(404, 'not-found', 'this model has no evaluation report (run covid-ct evaluate --model DIR)');
    return reply.type('text/html; charset=utf-8').send(readFileSync(reportPath));
  });

  app.get('/api/predictions', async (request) => {
    const raw = (request.query as Record<string, unknown>).limit;
    const limit = raw === undefined ? 50 : Number(raw);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new RequestError(400, 'bad-request', `limit must be an integer in [1, 1000], got ${JSON.stringify(raw)}`);
    return { predictions: log.recent(limit), total: log.count(), disclaimer: DISCLAIMER };
  });

  app.post('/api/predict', async (request) => {
    const started = performance.now();
    const explainParam = (request.query as Record<string, unknown>).explain;
    if (explainParam !== undefined && !['true', 'false', '1', '0'].includes(String(explainParam))) {
      throw new RequestError(400, 'bad-request', `explain must be true or false, got ${JSON.stringify(explainParam)}`);
    }
    const explain = explainParam === 'true' || explainParam === '1';
    const file = await request.file();
    if (!file) throw new RequestError(400, 'bad-request', "no file: send multipart/form-data with one file field (e.g. 'file')");
    const bytes = await file.toBuffer();
    if (bytes.length === 0) throw new RequestError(422, 'unreadable', 'the uploaded file is empty');
    const name = uploadName(file.filename);
    let study;
    try {
      study = await studyFromBytes(bytes, name, {
        imageSize: model.card.imageSize,
        window,
        config,
        imageLimits: { maxPixels: limits.maxPixels, maxFileBytes: limits.maxUploadBytes },
      });
    } catch (error) {
      if (error instanceof ImageError || error instanceof MedicalImageError) throw inputError(error);
      throw error;
    }
    const predictOptions = { topK: config.predict.topK, batchSize: config.predict.batchSize, heatmapOpacity: config.predict.heatmapOpacity };
    const report = explain
      ? await runner.exclusive(() => predictStudies(model, [study], { ...predictOptions, explain: { kind: 'data-url' } }))
      : await predictStudies(model, [study], { ...predictOptions, probabilities: runner.predict });
    if (report.failures.length > 0 || report.predictions.length === 0) {
      const failure = report.failures[0];
      throw new RequestError(422, 'unreadable', failure ? failure.reason : 'nothing to predict in this file');
    }
    const latencyMs = performance.now() - started;
    const headline = report.studies[0] ?? report.predictions[0]!;
    log.add({
      time: new Date().toISOString(),
      inputSha256: createHash('sha256').update(bytes).digest('hex'),
      inputKind: study.kind,
      modelId: model.card.id,
      probability: 'score' in headline ? headline.score : headline.probability,
      label: headline.label,
      latencyMs,
    });
    return { ...report, latencyMs };
  });

  return app;
}
