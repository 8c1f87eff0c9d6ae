// The JSON API over real loopback HTTP: uploads of every kind, limits, the log, concurrency, graceful shutdown.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { shutdown } from '../../src/cli/serve.ts';
import { DISCLAIMER, loadModel } from '../../src/inference/model.ts';
import type { LoadedModel } from '../../src/inference/model.ts';
import { SAMPLES, testImages, trainTinyModel } from '../inference/fixtures.ts';
import { serve, upload } from './helpers.ts';
import type { Served } from './helpers.ts';

let model: LoadedModel;
let server: Served;
const [covid, nonCovid] = [testImages('CT_COVID', 1)[0]!, testImages('CT_NonCOVID', 1)[0]!];

before(async () => {
  model = await loadModel(await trainTinyModel());
  server = await serve(model);
});
after(async () => {
  await server.close();
  await model.dispose();
});

test('a valid image: probability, label, threshold, model id, disclaimer; logged with its sha256', async () => {
  const { status, body } = await upload(server.url, covid, 'scan.png');
  assert.equal(status, 200, JSON.stringify(body));
  assert.equal(body.disclaimer, DISCLAIMER);
  const [p] = body.predictions;
  assert.deepEqual([p!.kind, p!.slice, p!.file, p!.modelId, p!.threshold], ['image', null, 'scan.png', model.card.id, model.card.threshold]);
  const [expected] = await model.predict([await (await import('../../src/data/decode.ts')).decodeImage(covid, { size: model.card.imageSize })]);
  assert.ok(Math.abs(p!.probability - expected!) < 1e-6);
  assert.equal(p!.heatmap, undefined);

  const logged = (await (await fetch(`${server.url}/api/predictions?limit=1`)).json()) as { predictions: Array<Record<string, unknown>> };
  const row = logged.predictions[0]!;
  assert.equal(row.inputSha256, createHash('sha256').update(readFileSync(covid)).digest('hex'));
  assert.deepEqual([row.inputKind, row.modelId, row.label], ['image', model.card.id, p!.label]);
  assert.ok(Math.abs((row.probability as number) - p!.probability) < 1e-9);
  assert.ok((row.latencyMs as number) > 0);
});

test('a DICOM upload is windowed and predicted; ?explain=true adds a Grad-CAM PNG', async () => {
  const { status, body } = await upload(server.url, join(SAMPLES, 'ct-chest-jpeg-lossless-sv1.dcm'), 'slice.dcm', '?explain=true');
  assert.equal(status, 200, JSON.stringify(body));
  assert.equal(body.predictions[0]!.kind, 'dicom');
  assert.match(body.predictions[0]!.heatmap!, /^data:image\/png;base64,/);
  const mr = await upload(server.url, join(SAMPLES, 'mr-small-explicit-le.dcm'), 'mr.dcm');
  assert.match(mr.body.predictions[0]!.warnings.join(' '), /not CT/);
});

test('errors are JSON with 4xx: oversized 413, too many pixels 413, wrong type 415, corrupt 422, no file 400', async () => {
  const small = await serve(model, { serve: { maxUploadBytes: 100_000, maxPixels: 10_000 } });
  try {
    const big = await upload(small.url, join(SAMPLES, 'ct-chest-explicit-le.dcm'), 'big.dcm');
    assert.equal(big.status, 413);
    assert.equal(big.body.error, 'too-large');
    const flat = await sharp({ create: { width: 200, height: 200, channels: 3, background: '#404040' } }).png().toBuffer();
    const pixels = await upload(small.url, flat, 'many-pixels.png');
    assert.equal(pixels.status, 413);
    assert.match(pixels.body.message!, /too many pixels/);
  } finally {
    await small.close();
  }
  const text = await upload(server.url, new TextEncoder().encode('patient,result\n1,positive\n'), 'scan.png');
  assert.deepEqual([text.status, text.body.error], [415, 'unsupported-type']);
  const notMultipart = await fetch(`${server.url}/api/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"path":"/etc/passwd"}' });
  assert.equal(notMultipart.status, 415);
  const corrupt = await upload(server.url, join(SAMPLES, 'corrupt-truncated.dcm'), 'cut.dcm');
  assert.deepEqual([corrupt.status, corrupt.body.error], [422, 'unreadable']);
  assert.match(corrupt.body.message!, /truncated DICOM file/);
  const truncatedPng = readFileSync(covid).subarray(0, 2000);
  assert.equal((await upload(server.url, truncatedPng, 'cut.png')).status, 422);
  const empty = await fetch(`${server.url}/api/predict`, { method: 'POST', body: new FormData() });
  assert.equal(empty.status, 400);
  assert.equal((await fetch(`${server.url}/api/predictions?limit=0`)).status, 400);
  assert.equal((await fetch(`${server.url}/api/predict?explain=maybe`, { method: 'POST', body: new FormData() })).status, 400);
  const missing = await fetch(`${server.url}/etc/passwd`);
  assert.deepEqual([missing.status, ((await missing.json()) as { error: string }).error], [404, 'not-found']);
  assert.equal((await fetch(`${server.url}/report`)).status, 404, 'the tiny model has no evaluation report');
});

test('health, model card with the evaluation report link, page', async () => {
  const health = (await (await fetch(`${server.url}/api/health`)).json()) as Record<string, unknown>;
  assert.deepEqual([health.status, health.model], ['ok', model.card.id]);
  const card = (await (await fetch(`${server.url}/api/model`)).json()) as { card: { id: string }; limits: string };
  assert.equal(card.card.id, model.card.id);
  assert.match(card.limits, /not a diagnostic device/);
  mkdirSync(join(model.dir, 'evaluation'), { recursive: true });
  writeFileSync(join(model.dir, 'evaluation', 'report.html'), '<!doctype html><title>report</title>');
  const withReport = (await (await fetch(`${server.url}/api/model`)).json()) as { report: string | null };
  assert.equal(withReport.report, '/report');
  const report = await fetch(`${server.url}/report`);
  assert.deepEqual([report.status, await report.text()], [200, '<!doctype html><title>report</title>']);
  const page = await (await fetch(server.url)).text();
  assert.match(page, /Research software, not a diagnostic device\./);
  assert.doesNotMatch(page, /(src|href)="https?:/);
});

test('50 concurrent predictions are all answered with the right probability, and exactly 50 rows are logged', async () => {
  const images = await Promise.all([covid, nonCovid].map(async (path) => (await import('../../src/data/decode.ts')).decodeImage(path, { size: model.card.imageSize })));
  const expected = await model.predict(images);
  const before = server.log.count();
  const responses = await Promise.all(Array.from({ length: 50 }, (_, i) => upload(server.url, i % 2 ? nonCovid : covid, `scan-${i}.png`)));
  responses.forEach(({ status, body }, i) => {
    assert.equal(status, 200);
    assert.equal(body.predictions[0]!.file, `scan-${i}.png`);
    assert.ok(Math.abs(body.predictions[0]!.probability - expected[i % 2]!) < 1e-5, `request ${i}`);
  });
  assert.equal(server.log.count() - before, 50);
});

test('graceful shutdown: a prediction in flight is answered, then the server stops', async () => {
  let started!: () => void;
  const inFlight = new Promise<void>((resolve) => (started = resolve));
  const slow = await serve(model, {}, async (images) => {
    started();
    await new Promise((resolve) => setTimeout(resolve, 400));
    return model.predict(images);
  });
  const pending = upload(slow.url, covid, 'slow.png');
  await inFlight;
  let closed = false;
  const stopping = shutdown(slow.app, 5000, async () => {
    closed = true;
    slow.log.close();
  });
  const { status } = await pending;
  assert.equal(status, 200);
  const waited = performance.now();
  await stopping;
  assert.ok(performance.now() - waited < 2000, 'shutdown did not wait for an idle connection to time out');
  assert.ok(closed);
  await assert.rejects(fetch(`${slow.url}/api/health`));
});
