import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import type { PredictionRecord } from '../../src/evaluation/index.ts';
import {
  DISCLAIMER,
  evaluatePredictions,
  galleryExamples,
  headlineText,
  makeThumbnail,
  MetricError,
  renderReportHtml,
  writeEvaluationReport,
} from '../../src/evaluation/index.ts';

let directory: string;
let records: PredictionRecord[];

before(async () => {
  directory = await mkdtemp(join(tmpdir(), 'covid-ct-evaluation-'));
  // 24 small greyscale PNGs; a deterministic spread of probabilities gives all four outcomes at threshold 0.5.
  records = [];
  for (let i = 0; i < 24; i++) {
    const label = i % 2;
    const path = join(directory, `image <${i}> & "quoted".png`);
    await sharp({ create: { width: 40 + i, height: 30, channels: 3, background: { r: i * 10, g: i * 10, b: i * 10 } } })
      .png()
      .toFile(path);
    const probability = Math.min(0.99, Math.max(0.01, 0.25 + 0.4 * label + 0.3 * Math.sin(i * 1.7)));
    records.push({ path, label, probability });
  }
});

after(async () => {
  await rm(directory, { recursive: true, force: true });
});

test('evaluatePredictions agrees with itself and rejects undefined AUC', () => {
  const evaluation = evaluatePredictions(records, { threshold: 0.5, bootstrap: { resamples: 200, seed: 3 } });
  const { tp, fp, tn, fn } = evaluation.metrics;
  assert.equal(tp + fp + tn + fn, records.length);
  assert.ok(tp > 0 && fp > 0 && tn > 0 && fn > 0, JSON.stringify(evaluation.metrics));
  assert.equal(evaluation.predictions.filter((p) => p.outcome === 'FP').length, fp);
  assert.equal(evaluation.report.accuracy, evaluation.metrics.accuracy);
  assert.equal(evaluation.report.classes[1]!.recall, evaluation.metrics.sensitivity);
  assert.equal(evaluation.report.classes[0]!.recall, evaluation.metrics.specificity);
  assert.throws(() => evaluatePredictions(records.filter((r) => r.label === 1), { threshold: 0.5 }), MetricError);
  assert.throws(() => evaluatePredictions([], { threshold: 0.5 }), /empty/);
});

test('galleries: at most the limit, most confident first', () => {
  const evaluation = evaluatePredictions(records, { threshold: 0.5, bootstrap: { resamples: 50 } });
  const tp = galleryExamples(evaluation.predictions, 'TP', 3);
  assert.ok(tp.length <= 3);
  for (let i = 1; i < tp.length; i++) assert.ok(tp[i - 1]!.probability >= tp[i]!.probability);
  const tn = galleryExamples(evaluation.predictions, 'TN');
  for (let i = 1; i < tn.length; i++) assert.ok(tn[i - 1]!.probability <= tn[i]!.probability);
  assert.ok(tn.every((p) => p.label === 0 && p.predicted === 0));
});

test('thumbnails are JPEG within 128 px', async () => {
  const big = join(directory, 'big.png');
  await sharp({ create: { width: 300, height: 200, channels: 3, background: { r: 128, g: 128, b: 128 } } }).png().toFile(big);
  const meta = await sharp(await makeThumbnail(big)).metadata();
  assert.equal(meta.format, 'jpeg');
  assert.equal(meta.width, 128);
  assert.equal(meta.height, 85);
});

test('report.html is self-contained, escaped, with banner, figures and four galleries; metrics.json is consistent', async () => {
  const evaluation = evaluatePredictions(records, {
    threshold: 0.5,
    classNames: ['NonCOVID', 'COVID'],
    bootstrap: { resamples: 300, seed: 1 },
  });
  const out = join(directory, 'report');
  const history = [1, 2].map((phase, i) => ({
    phase,
    round: 1,
    epoch: 1,
    train: { loss: 0.6 - i * 0.1, accuracy: 0.7, typeI: 0.3, typeII: 0.2 },
    val: { loss: 0.65 - i * 0.1, accuracy: 0.68, typeI: 0.3, typeII: 0.25 },
  }));
  const written = await writeEvaluationReport(out, evaluation, {
    history,
    details: { Model: 'runs/<test> & co' },
    generatedAt: new Date('2024-01-02T03:04:05Z'),
  });
  const html = await readFile(written.html, 'utf8');

  assert.ok(html.includes(DISCLAIMER));
  assert.ok(html.includes('Research software, not a diagnostic device.'));
  for (const id of ['true-positives', 'true-negatives', 'false-positives', 'false-negatives']) {
    assert.ok(html.includes(`<section id="${id}">`), `missing gallery ${id}`);
  }
  for (const id of ['confusion-matrix', 'classification-report', 'roc', 'training-history']) {
    assert.ok(html.includes(`id="${id}"`), `missing section ${id}`);
  }
  // Self-contained: no external resource, every image inline.
  assert.doesNotMatch(html, /(src|href)\s*=\s*["']?\s*(https?:)?\/\//i);
  assert.doesNotMatch(html, /<script|<link|@import|url\(/i);
  const sources = [...html.matchAll(/<img[^>]*\ssrc="([^"]*)"/g)].map((m) => m[1]!);
  assert.equal(sources.length, 3 + evaluation.predictions.length); // 24 images, all shown with the default limit
  assert.ok(sources.every((s) => s.startsWith('data:image/')), 'an image is not a data: URI');
  assert.ok(sources.filter((s) => s.startsWith('data:image/jpeg;base64,')).length === evaluation.predictions.length);
  assert.doesNotMatch(html, /image unavailable/);
  // Escaped: file names and details with <, >, &, " appear only escaped.
  assert.ok(!html.includes('<0>') && html.includes('image &lt;0&gt; &amp; &quot;quoted&quot;.png'));
  assert.ok(html.includes('runs/&lt;test&gt; &amp; co'));
  // The classification report, as text (escaped) and as a table.
  assert.ok(html.includes(`<pre>${evaluation.report.text}</pre>`));
  assert.ok(html.includes('<table class="classification-report">'));
  assert.ok(!html.includes('NaN') && !html.includes('undefined'));

  const json = JSON.parse(await readFile(written.metricsJson, 'utf8'));
  assert.equal(json.threshold, 0.5);
  assert.equal(json.size, 24);
  assert.deepEqual(json.counts, { tp: evaluation.metrics.tp, fp: evaluation.metrics.fp, tn: evaluation.metrics.tn, fn: evaluation.metrics.fn });
  assert.equal(json.counts.tp + json.counts.fp + json.counts.tn + json.counts.fn, 24);
  assert.equal(json.auc, evaluation.auc.auc);
  assert.ok(json.aucCi.low <= json.auc && json.auc <= json.aucCi.high);
  assert.equal(json.aucCi.resamples, 300);
  assert.equal(json.accuracy, (json.counts.tp + json.counts.tn) / 24);
  assert.equal(json.roc.thresholds[0], null);
  assert.equal(json.predictions.length, 24);
  assert.equal(json.classificationReport.text, evaluation.report.text);
  assert.equal(json.details.Model, 'runs/<test> & co');

  // The figures exist as SVG and PNG.
  const names = written.figures.map((f) => f.slice(out.length + 1)).sort();
  assert.deepEqual(names, [
    'confusion-matrix.png',
    'confusion-matrix.svg',
    'roc.png',
    'roc.svg',
    'training-history.png',
    'training-history.svg',
  ]);
  assert.equal((await sharp(join(out, 'roc.png')).metadata()).width, 520);
});

test('an unreadable gallery image becomes a placeholder, not a failed report', async () => {
  const broken = records.map((r, i) => (i === 0 ? { ...r, path: join(directory, 'missing.png') } : r));
  const evaluation = evaluatePredictions(broken, { threshold: 0.5, bootstrap: { resamples: 20 } });
  const html = await renderReportHtml(evaluation);
  assert.match(html, /image unavailable/);
  // Ready-made thumbnails skip decoding altogether.
  const thumbnail = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } }).png().toBuffer();
  const ready = new Map(broken.map((r) => [r.path, thumbnail]));
  const html2 = await renderReportHtml(evaluation, { thumbnails: ready, galleryLimit: 1 });
  assert.doesNotMatch(html2, /image unavailable/);
  assert.equal([...html2.matchAll(/data:image\/png;base64/g)].length, 4);
});

test('headline text states the figures', () => {
  const evaluation = evaluatePredictions(records, { threshold: 0.5, bootstrap: { resamples: 100 } });
  const line = headlineText(evaluation);
  assert.match(line, /^accuracy 0\.\d{3}, AUC 0\.\d{3} \(95% CI 0\.\d{3}-[01]\.\d{3}\), sensitivity 0\.\d{3}, specificity 0\.\d{3}, threshold 0\.5000 \(n = 24\)$/);
});
