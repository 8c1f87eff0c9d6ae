// `npm run bench -- serve [--model DIR] [--requests N] [--tta none|flips] [--no-worker]`: predictions per second and p50/p95 latency of
// POST /api/predict with 4 concurrent clients over loopback (a bounded number of requests, COVID-CT test images).
// Without --model a tiny model is trained first (a few seconds): serving cost does not depend on the weights.
// --no-worker runs the model on the event loop (config serve.predictionWorker false), for comparison.
import { readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { resolveConfig } from '../src/config/index.ts';
import type { TtaMode } from '../src/config/index.ts';
import { loadModel } from '../src/inference/model.ts';
import { buildServer } from '../src/serving/app.ts';
import { PredictionLog } from '../src/serving/log.ts';
import { testImages, trainTinyModel } from '../test/inference/fixtures.ts';

const CLIENTS = 4;
const { values } = parseArgs({ options: { model: { type: 'string' }, requests: { type: 'string', default: '200' }, tta: { type: 'string' }, 'no-worker': { type: 'boolean', default: false } } });
const total = Number(values.requests);
if (!Number.isInteger(total) || total < CLIENTS || total > 10_000) throw new Error(`--requests must be an integer in [${CLIENTS}, 10000], got ${values.requests}`);

const modelDir = values.model ?? (await trainTinyModel());
// --tta none|flips overrides the model's own test-time augmentation (flips triples the work per image).
const model = await loadModel(modelDir, values.tta ? { tta: values.tta as TtaMode } : {});
const logPath = join(dirname(modelDir), `bench-serve-${process.pid}.sqlite`);
const log = new PredictionLog(logPath);
const app = await buildServer({ model, config: resolveConfig({ serve: { predictionWorker: !values['no-worker'] } }), log });
const url = await app.listen({ port: 0, host: '127.0.0.1' });
const uploads = [...testImages('CT_COVID', 4), ...testImages('CT_NonCOVID', 4)].map((path) => new Uint8Array(readFileSync(path)));

async function predict(i: number): Promise<number> {
  const form = new FormData();
  form.append('file', new Blob([uploads[i % uploads.length]!]), `bench-${i}.png`);
  const started = performance.now();
  const response = await fetch(`${url}/api/predict`, { method: 'POST', body: form });
  await response.arrayBuffer();
  if (response.status !== 200) throw new Error(`request ${i}: HTTP ${response.status}`);
  return performance.now() - started;
}

try {
  for (let i = 0; i < 8; i++) await predict(i); // warm-up: first ONNX/tfjs runs compile kernels
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (next < total) latencies.push(await predict(next++));
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const sorted = latencies.sort((a, b) => a - b);
  const quantile = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  const result = { bench: 'serve', rps: Number((total / seconds).toFixed(2)), p50_ms: Number(quantile(0.5).toFixed(1)), p95_ms: Number(quantile(0.95).toFixed(1)), requests: total, clients: CLIENTS, worker: !values['no-worker'] };
  console.log(`${total} predictions, ${CLIENTS} clients over loopback: ${result.rps} /s, p50 ${result.p50_ms} ms, p95 ${result.p95_ms} ms (target p95 < 200 ms)`);
  console.log(JSON.stringify(result));
} finally {
  await app.close();
  log.close();
  rmSync(logPath, { force: true });
  rmSync(`${logPath}-wal`, { force: true });
  rmSync(`${logPath}-shm`, { force: true });
  await model.dispose();
}
