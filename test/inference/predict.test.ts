// predict on real inputs: COVID-CT images, the DICOM samples (syntaxes, scrambled series, MR, truncated) and a
// NIfTI volume, with a tiny model trained here.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { before, test } from 'node:test';
import sharp from 'sharp';
import { main } from '../../src/cli/main.ts';
import { parseWindow } from '../../src/cli/predict.ts';
import { DEFAULTS, PROJECT_ROOT } from '../../src/config/index.ts';
import type { DecodedImage } from '../../src/data/decode.ts';
import { gradCam } from '../../src/inference/gradcam.ts';
import { expandInputs } from '../../src/inference/inputs.ts';
import { DISCLAIMER, loadModel, trunkActivations } from '../../src/inference/model.ts';
import type { LoadedModel } from '../../src/inference/model.ts';
import { CSV_COLUMNS, labelOf, predictStudies, toCsv, topKMean } from '../../src/inference/predict.ts';
import { tempDir } from '../data/fixtures.ts';
import { SAMPLES, testImages, trainTinyModel } from './fixtures.ts';

let modelDir: string;
let model: LoadedModel;

before(async () => {
  modelDir = await trainTinyModel();
  // Without test-time augmentation, so a probability is one trunk + tail pass (Grad-CAM's logit checks on it).
  model = await loadModel(modelDir, { tta: 'none' });
});

const inputOptions = () => ({ imageSize: model.card.imageSize, window: DEFAULTS.medical.window, config: DEFAULTS });
const predictOptions = { topK: 5, batchSize: 8, heatmapOpacity: 0.5 };

test('top-k mean: the k highest values, k capped at the count; labels at the threshold', () => {
  assert.deepEqual(topKMean([0.1, 0.9, 0.5, 0.7], 2), { score: 0.8, k: 2 });
  assert.deepEqual(topKMean([0.2, 0.4], 5), { score: 0.30000000000000004, k: 2 });
  assert.throws(() => topKMean([0.5], 0), /k must be a positive integer/);
  assert.equal(labelOf(0.5, 0.5), 'COVID');
  assert.equal(labelOf(0.49, 0.5), 'non-COVID');
});

test('images, DICOM syntaxes, a scrambled series and a NIfTI volume are predicted; bad inputs are listed with reasons', async () => {
  const image = testImages('CT_COVID', 1)[0]!;
  const inputs = [
    image,
    join(SAMPLES, 'ct-chest-explicit-le.dcm'),
    join(SAMPLES, 'ct-chest-jpeg-lossless-p14.dcm'),
    join(SAMPLES, 'ct-chest-jpeg-lossless-sv1.dcm'),
    join(SAMPLES, 'mr-small-explicit-le.dcm'),
    join(SAMPLES, 'series'),
    join(SAMPLES, 'nifti', 'chest-ct-cropped.nii.gz'),
    join(SAMPLES, 'corrupt-truncated.dcm'),
    join(SAMPLES, 'SOURCE.md'),
    join(SAMPLES, 'no-such-file.dcm'),
  ];
  const { studies, failures } = await expandInputs(inputs, inputOptions());
  const report = await predictStudies(model, studies, predictOptions, failures);
  assert.equal(report.disclaimer, DISCLAIMER);

  const byFile = (name: string) => report.predictions.filter((p) => basename(p.file) === name);
  const [png] = byFile(basename(image));
  assert.deepEqual([png!.kind, png!.slice, png!.modelId], ['image', null, model.card.id]);
  for (const p of report.predictions) {
    assert.ok(p.probability >= 0 && p.probability <= 1);
    assert.equal(p.label, labelOf(p.probability, model.card.threshold));
  }

  // The same pixels in three transfer syntaxes give the same probability.
  const explicit = byFile('ct-chest-explicit-le.dcm')[0]!.probability;
  assert.ok(Math.abs(byFile('ct-chest-jpeg-lossless-p14.dcm')[0]!.probability - explicit) < 1e-6);
  assert.ok(Math.abs(byFile('ct-chest-jpeg-lossless-sv1.dcm')[0]!.probability - explicit) < 1e-6);
  assert.match(byFile('mr-small-explicit-le.dcm')[0]!.warnings.join('\n'), /modality is MR, not CT/);

  // Series: slices in Image Position order (inferior to superior), not file-name order.
  const series = report.predictions.filter((p) => p.kind === 'dicom-series');
  assert.deepEqual(series.map((p) => basename(p.file)), ['000064.dcm', '000159.dcm', '000183.dcm', '000219.dcm', '000117.dcm']);
  assert.deepEqual(series.map((p) => p.slice), [0, 1, 2, 3, 4]);
  const seriesStudy = report.studies.find((s) => s.kind === 'dicom-series')!;
  assert.equal(seriesStudy.k, 5);
  assert.ok(Math.abs(seriesStudy.score - series.reduce((a, p) => a + p.probability, 0) / 5) < 1e-9);

  const volume = report.studies.find((s) => s.kind === 'nifti')!;
  const volumeSlices = report.predictions.filter((p) => p.kind === 'nifti');
  assert.equal(volume.slices, volumeSlices.length);
  assert.equal(volumeSlices.length, 112, 'the k axis (1.5 mm, superior) is the slice axis');
  assert.equal(volume.k, 5);
  const top5 = volumeSlices.map((p) => p.probability).sort((a, b) => b - a).slice(0, 5);
  assert.ok(Math.abs(volume.score - top5.reduce((a, b) => a + b, 0) / 5) < 1e-9);

  const reasons = Object.fromEntries(report.failures.map((f) => [basename(f.file), f.reason]));
  assert.deepEqual(Object.keys(reasons).sort(), ['SOURCE.md', 'corrupt-truncated.dcm', 'no-such-file.dcm']);
  assert.match(reasons['corrupt-truncated.dcm']!, /truncated DICOM file/);
  assert.match(reasons['SOURCE.md']!, /not an image, DICOM or NIfTI file/);
  assert.match(reasons['no-such-file.dcm']!, /no such file/);

  const csv = toCsv(report).split('\n');
  assert.equal(csv[0], `# ${DISCLAIMER}`);
  assert.equal(csv[1], CSV_COLUMNS.join(','));
  assert.equal(csv.filter((line) => line.startsWith('study,')).length, 2);
  assert.equal(csv.filter((line) => line.startsWith('failure,')).length, 3);
});

test('Grad-CAM on the trained model: deterministic, in [0, 1], the last conv block grid, logit (tfjs) consistent with P(COVID) (ONNX Runtime)', async () => {
  assert.equal(model.tailEngine, 'onnx');
  const { studies } = await expandInputs(testImages('CT_COVID', 1), inputOptions());
  const { image } = await studies[0]!.slices[0]!.load();
  // What the trunk sees: the model's own preprocessing first, when it has one.
  const prepare = (model as { prepare?: (image: DecodedImage) => DecodedImage }).prepare;
  const activations = await trunkActivations(model.trunk, [prepare ? prepare(image) : image], model.card.imageSize);
  const cam = gradCam(model.tail, activations, model.trunk.outputShape);
  assert.equal(cam.layer, 'conv_1x1');
  assert.deepEqual([cam.width, cam.height], [7, 7]);
  assert.ok(cam.map.every((v) => v >= 0 && v <= 1));
  assert.deepEqual(gradCam(model.tail, activations, model.trunk.outputShape).map, cam.map);
  const [probability] = await model.predict([image]);
  assert.ok(Math.abs(1 / (1 + Math.exp(-cam.logit)) - probability!) < 1e-4);
});

const cli = (...args: string[]) => spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'covid-ct.js'), ...args], { encoding: 'utf8' });

test('CLI: predict --format json --explain writes overlays; exit 3 when some inputs failed, 0 when all succeeded', async () => {
  const out = tempDir();
  const heatmaps = join(out, 'heatmaps');
  const image = testImages('CT_NonCOVID', 1)[0]!;
  const partial = cli('predict', '--model', modelDir, '--format', 'json', '--explain', '--heatmap-dir', heatmaps, image, join(SAMPLES, 'series'), join(SAMPLES, 'corrupt-truncated.dcm'));
  assert.equal(partial.status, 3, partial.stderr);
  const report = JSON.parse(partial.stdout);
  assert.equal(report.disclaimer, DISCLAIMER);
  assert.equal(report.predictions.length, 6);
  assert.equal(report.studies.length, 1);
  assert.match(partial.stderr, /failed: .*corrupt-truncated\.dcm: truncated DICOM file/);
  for (const p of report.predictions) assert.ok(existsSync(p.heatmap), p.heatmap);
  assert.ok(report.predictions[1].heatmap.endsWith('000064_slice0000_gradcam.png'));

  const csvFile = join(out, 'out.csv');
  // In-process (no second tsx start-up): a run where every input succeeds leaves the exit code at 0.
  assert.equal(await main(['node', 'covid-ct', 'predict', '--model', modelDir, '--output', csvFile, '--top-k', '2', image]), 0);
  assert.match(readFileSync(csvFile, 'utf8'), new RegExp(`^# ${DISCLAIMER}\ntype,file,slice,kind,probability,label,threshold,model_id`));
  assert.throws(() => parseWindow('lung'), /--window must be 'file' or LEVEL,WIDTH/);
  assert.deepEqual(parseWindow('-600,1500'), { level: -600, width: 1500 });
  assert.equal(parseWindow('file'), 'file');
});

test('overlays are PNGs at the model image size', async () => {
  const { studies } = await expandInputs([join(SAMPLES, 'ct-small-explicit-le.dcm')], inputOptions());
  const report = await predictStudies(model, studies, { ...predictOptions, explain: { kind: 'data-url' } });
  const url = report.predictions[0]!.heatmap!;
  assert.match(url, /^data:image\/png;base64,/);
  const meta = await sharp(Buffer.from(url.split(',')[1]!, 'base64')).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ['png', model.card.imageSize, model.card.imageSize]);
});
