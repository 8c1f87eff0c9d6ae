// Training and evaluation end to end on a small slice of the real COVID-CT data (linked, not copied).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { buildTfjsModel } from '../../src/engine/backbone.ts';
import { loadTfjsLayersModel } from '../../src/engine/tfjs-io.ts';
import { cliWithData, COVID_CT, linkedDataset, tailWeights, trainLinked } from '../fixtures/covid-ct.ts';

test('phase 1 trains only the head: the backbone layers keep their ImageNet weights', async () => {
  const root = linkedDataset(10, 0);
  const out = join(root, 'model');
  const { config, result } = await trainLinked(root, out, { train: { phase1: { epochs: 2 }, phase2: { epochs: 0 } } });
  assert.equal(result.history.length, 2);
  assert.ok(result.card.threshold > 0 && result.card.threshold < 1);

  const saved = await loadTfjsLayersModel(join(out, 'tail', 'model.json'));
  const pretrained = await buildTfjsModel(config.train.backbone, { from: config.train.fineTuneAt });
  for (const layer of pretrained.layers) {
    const savedLayer = saved.getLayer(layer.name);
    layer.getWeights().forEach((w, i) => assert.deepEqual(savedLayer.getWeights()[i]!.dataSync(), w.dataSync(), `${layer.name} changed in phase 1`));
  }
  const headKernel = saved.getLayer('head_logit').getWeights()[0]!;
  assert.ok(tf.any(tf.notEqual(headKernel, 0)).dataSync()[0], 'the head trained');
});

/** Three epochs (1 + 2) over three views; returns the saved tail's weights by layer and position. */
async function trainSmall(root: string, out: string, extra: { cacheViews?: boolean; stopAfter?: number; resume?: boolean } = {}) {
  let epochs = 0;
  const { result } = await trainLinked(root, out, { train: { phase2: { epochs: 2 }, views: 3 } }, {
    cacheViews: extra.cacheViews,
    resume: extra.resume,
    onEpoch: () => epochs++,
    shouldStop: () => extra.stopAfter !== undefined && epochs >= extra.stopAfter,
  });
  return { result, weights: await tailWeights(out), epochs };
}

test('cached and uncached trunk activations train to the same weights (K covers every view)', async () => {
  const root = linkedDataset(6, 0);
  const cached = await trainSmall(root, join(root, 'cached'));
  const uncached = await trainSmall(root, join(root, 'uncached'), { cacheViews: false });
  assert.equal(cached.result.history.length, 3);
  assert.deepEqual(uncached.weights, cached.weights);
  assert.deepEqual(uncached.result.history, cached.result.history);
});

test('a run stopped after an epoch and resumed ends with the same weights as one never stopped', async () => {
  const root = linkedDataset(6, 0);
  const whole = await trainSmall(root, join(root, 'whole'));
  const stopped = await trainSmall(root, join(root, 'stopped'), { stopAfter: 2 });
  assert.match(stopped.result.stoppedEarly ?? '', /interrupted after covid-ct round 1 phase 2 epoch 1/);
  assert.equal(stopped.result.history.length, 2);
  const resumed = await trainSmall(root, join(root, 'stopped'), { resume: true });
  assert.equal(resumed.epochs, 1, 'only the missing epoch runs');
  assert.deepEqual(resumed.result.history, whole.result.history);
  assert.deepEqual(resumed.weights, whole.weights);
});

test('CLI: train --evaluate writes the model directory and a self-contained report; evaluate reproduces it', () => {
  const root = linkedDataset(16, 8);
  const out = join(root, 'model');
  const cli = cliWithData(root);
  // One run, so that its own validation images can be scored (--split val; a refit trained on them, see refit.test.ts).
  const run = cli('train', '--no-refit', '--epochs1', '2', '--epochs2', '1', '--rounds', '1', '--views', '2', '--out', out, '--evaluate');
  assert.equal(run.status, 0, run.stderr + run.stdout);
  assert.match(run.stdout, /\[ {2}3\/3\] covid-ct round 1 phase 2 epoch 1\/1 \| train loss [\d.]+ acc [\d.]+ I [\d.]+ II [\d.]+ \| val loss/);
  assert.match(run.stdout, /accuracy [\d.]+, AUC [\d.]+ \(95% CI [\d.]+-[\d.]+\), sensitivity/);
  for (const file of ['model.json', 'config.json', 'split.json', 'history.json', 'training-history.png', 'training-history.svg', 'tail/model.json', 'evaluation/report.html', 'evaluation/metrics.json', 'evaluation/roc.png', 'evaluation/confusion-matrix.png']) {
    assert.ok(existsSync(join(out, file)), file);
  }
  const card = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8'));
  assert.equal(card.backbone.name, 'mobilenet-v2');
  assert.match(card.backbone.sourceSha256, /^[0-9a-f]{64}$/);
  const history = JSON.parse(readFileSync(join(out, 'history.json'), 'utf8'));
  assert.deepEqual(history.map((h: { phase: number }) => h.phase), [1, 1, 2]);
  const html = readFileSync(join(out, 'evaluation', 'report.html'), 'utf8');
  assert.match(html, /Research software, not a diagnostic device/);
  assert.doesNotMatch(html, /(src|href)="https?:/);
  const first = JSON.parse(readFileSync(join(out, 'evaluation', 'metrics.json'), 'utf8'));
  const inRange = (v: unknown) => v === null || (typeof v === 'number' && v >= 0 && v <= 1);
  assert.equal(first.shortcutProbes.test.formatAuc, null, 'the test images are all PNG: no container probe there');
  assert.ok(inRange(first.shortcutProbes.test.colourAuc.covid) && inRange(first.shortcutProbes.validation.formatAuc));
  assert.match(html, /shortcut probes/);
  // Every non-COVID test image is PNG: all of them are scored again as JPEG copies.
  assert.equal(first.shortcutProbes.formatSwap.positives, 8);
  assert.equal(first.shortcutProbes.formatSwap.negatives, 8);
  assert.ok(inRange(first.shortcutProbes.formatSwap.auc) && Number.isFinite(first.shortcutProbes.formatSwap.meanShift));
  assert.match(html, /container swap probe/);

  const again = cli('evaluate', '--model', out, '--out', join(root, 'again'));
  assert.equal(again.status, 0, again.stderr);
  const second = JSON.parse(readFileSync(join(root, 'again', 'metrics.json'), 'utf8'));
  assert.equal(second.auc, first.auc);
  assert.deepEqual(second.aucCi, first.aucCi);
  assert.deepEqual(second.counts, first.counts);

  const folder = cli('evaluate', '--model', out, '--images', join(root, 'covid-ct', 'testing-images'), '--out', join(root, 'folder'));
  assert.equal(folder.status, 0, folder.stderr);
  const folderMetrics = JSON.parse(readFileSync(join(root, 'folder', 'metrics.json'), 'utf8'));
  assert.deepEqual(folderMetrics.counts, first.counts);
  // The linked folder has no metadata.csv: no patient level, said so on stdout and in metrics.json.
  assert.match(folder.stdout, /^patients: n\/a \(no metadata\.csv in /m);
  assert.equal(folderMetrics.patientLevel, null);
  assert.match(folderMetrics.metadata.notes[0], /^no metadata\.csv/);
  // `--data PATH` with PATH a folder of class subfolders (issue 9's form) is the same evaluation.
  const asData = cli('evaluate', '--model', out, '--data', join(root, 'covid-ct', 'testing-images'), '--out', join(root, 'as-data'));
  assert.equal(asData.status, 0, asData.stderr);
  assert.match(asData.stdout, /a folder of class subfolders, evaluated as --images/);
  assert.deepEqual(JSON.parse(readFileSync(join(root, 'as-data', 'metrics.json'), 'utf8')).counts, first.counts);

  // --split val scores the model's own validation images: the same predictions the card's metrics came from.
  const val = cli('evaluate', '--model', out, '--split', 'val', '--out', join(root, 'val'));
  assert.equal(val.status, 0, val.stderr);
  const valMetrics = JSON.parse(readFileSync(join(root, 'val', 'metrics.json'), 'utf8'));
  const valEntries = JSON.parse(readFileSync(join(out, 'split.json'), 'utf8')).entries.filter((e: { split: string }) => e.split === 'val');
  assert.equal(valMetrics.counts.tp + valMetrics.counts.fp + valMetrics.counts.tn + valMetrics.counts.fn, valEntries.length);
  assert.ok(Math.abs(valMetrics.auc - card.validation.auc) < 1e-9, `validation AUC ${valMetrics.auc} vs the card's ${card.validation.auc}`);
  assert.equal(cli('evaluate', '--model', out, '--split', 'train').status, 2, 'an unknown split is a usage error');

  // The portable engine (tfjs-wasm worker_threads) gives the same answers as ONNX Runtime.
  const wasm = cli('evaluate', '--model', out, '--engine', 'wasm', '--out', join(root, 'wasm'));
  assert.equal(wasm.status, 0, wasm.stderr);
  const wasmMetrics = JSON.parse(readFileSync(join(root, 'wasm', 'metrics.json'), 'utf8'));
  assert.deepEqual(wasmMetrics.counts, first.counts);
  assert.ok(Math.abs(wasmMetrics.auc - first.auc) < 1e-4);

  const missing = cli('evaluate', '--model', join(root, 'nope'));
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /not a covid-ct model directory/);
});

test('label smoothing: the head stops short of certainty on its own training images', async () => {
  const root = linkedDataset(8, 0);
  // Phase 1 only, run to convergence: unsmoothed the head separates 12 training images perfectly; smoothed
  // (targets 0.8 / 0.2) it settles at p = 0.8, so the loss against the true labels stays near -ln 0.8 = 0.22.
  const run = async (labelSmoothing: number) => {
    const { result } = await trainLinked(root, join(root, `smoothing-${labelSmoothing}`), { train: { phase1: { epochs: 60, learningRate: 0.01 }, phase2: { epochs: 0 }, labelSmoothing } });
    return result.history.at(-1)!.train.loss;
  };
  const [plain, smoothed] = [await run(0), await run(0.4)];
  assert.ok(plain < 0.1, `unsmoothed train loss ${plain}`);
  assert.ok(smoothed > 0.18 && smoothed < 0.35, `smoothed train loss ${smoothed}`);
});

test('a loss that becomes infinite or NaN stops training with a message and keeps the best weights so far', async () => {
  const root = linkedDataset(6, 0);
  const out = join(root, 'diverged');
  // A NaN learning rate turns every tail weight into NaN at phase 2's first step, as a diverging run would.
  // Validation refuses such a rate, so the test sets it behind validation's back to reach the guard.
  const { result } = await trainLinked(root, out, { train: { phase1: { epochs: 1 }, phase2: { epochs: 2 } } }, {}, (config) => {
    config.train.phase2.learningRate = Number.NaN;
  });
  assert.match(result.stoppedEarly ?? '', /covid-ct round 1 phase 2 epoch 1: the loss became (NaN|Infinity); training stopped and the best weights so far were kept/);
  assert.equal(result.history.length, 1, 'only the finished phase-1 epoch is recorded');
  const card = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8'));
  assert.ok(Number.isFinite(card.threshold) && Number.isFinite(card.validation.auc));
  const tail = await loadTfjsLayersModel(join(out, 'tail', 'model.json'));
  for (const weight of tail.weights) assert.ok(weight.read().dataSync().every(Number.isFinite), `${weight.name} is finite`);
  tail.dispose();
});

test('CLI: pre-train -> train -> evaluate on a small subset: its own schedule, the files, numbers that agree', () => {
  const root = linkedDataset(8, 4);
  // A small pre-training set beside covid-ct: the first SARS-CoV-2 CT images of each class, linked.
  const sars = join(COVID_CT, '..', 'sars-cov-2-ct-224');
  for (const cls of ['CT_COVID', 'CT_NonCOVID']) {
    mkdirSync(join(root, 'sars-mini', cls), { recursive: true });
    for (const name of readdirSync(join(sars, cls)).sort().slice(0, 6)) symlinkSync(join(sars, cls, name), join(root, 'sars-mini', cls, name));
  }
  const configFile = join(root, 'schedule.json');
  writeFileSync(configFile, JSON.stringify({ train: { pretrainSchedule: { rounds: 1, phase1: { epochs: 2 }, phase2: { epochs: 1 }, views: 1 } } }));
  const out = join(root, 'model');
  const run = cliWithData(root)('train', '--config', configFile, '--pretrain', 'sars-mini',
    '--epochs1', '1', '--epochs2', '1', '--rounds', '1', '--views', '1', '--out', out, '--evaluate');
  assert.equal(run.status, 0, run.stderr + run.stdout);
  // The defaults refit: the selection run holds the whole schedule; the refit starts from the weights its
  // pre-training ended with (its history copies those epochs) and stops at the COVID-CT epoch the selection run kept.
  const phases = (dir: string) => (JSON.parse(readFileSync(join(dir, 'history.json'), 'utf8')) as Array<{ phase: string }>).map((h) => h.phase);
  assert.deepEqual(phases(join(out, 'selection')), ['sars-mini 1', 'sars-mini 1', 'sars-mini 2', 'covid-ct 1', 'covid-ct 2']);
  const { checkpoint } = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8'));
  assert.deepEqual(phases(out), ['sars-mini 1', 'sars-mini 1', 'sars-mini 2', 'covid-ct 1', 'covid-ct 2'].slice(0, checkpoint.phase === 1 ? 4 : 5));
  for (const file of ['model.json', 'split.json', 'training-history.png', 'evaluation/report.html', 'evaluation/metrics.json']) assert.ok(existsSync(join(out, file)), file);
  const m = JSON.parse(readFileSync(join(out, 'evaluation', 'metrics.json'), 'utf8'));
  const { tp, fp, tn, fn } = m.counts;
  assert.equal(tp + fp + tn + fn, 8, 'the confusion matrix holds every test image');
  const close = (a: number, b: number) => Math.abs(a - b) < 1e-9;
  assert.ok(close(m.accuracy, (tp + tn) / 8) && close(m.sensitivity, tp / (tp + fn)) && close(m.specificity, tn / (tn + fp)));
  assert.ok(m.aucCi.low <= m.auc && m.auc <= m.aucCi.high);
  assert.match(run.stdout, new RegExp(`accuracy ${m.accuracy.toFixed(3)}, AUC ${m.auc.toFixed(3)}`));
});

test('a run stopped at the end of its pre-training stage and resumed ends with the weights of one never stopped', async () => {
  const root = linkedDataset(6, 0);
  const overrides = { train: { phase2: { epochs: 2 }, pretrainSchedule: { rounds: 1, phase1: { epochs: 1 }, phase2: { epochs: 2 }, views: 1 } } };
  const whole = join(root, 'whole');
  await trainLinked(root, whole, overrides, { pretrainingStage: true });
  const stopped = join(root, 'stopped');
  let epochs = 0;
  await trainLinked(root, stopped, overrides, { pretrainingStage: true, onEpoch: () => epochs++, shouldStop: () => epochs >= 3 });
  const stages: string[] = [];
  await trainLinked(root, stopped, overrides, { pretrainingStage: true, resume: true, onEpoch: (e) => stages.push(e.stage) });
  assert.deepEqual(stages, ['covid-ct', 'covid-ct', 'covid-ct']);
  assert.ok(existsSync(join(stopped, 'stage-1-end', 'state.json')), 'the finished stage saved the weights it ended with');
  assert.deepEqual(await tailWeights(stopped), await tailWeights(whole));
});

test('weight averaging: the mean of the last phase-2 epochs is offered like an epoch, kept only when its validation loss is lower', async () => {
  const root = linkedDataset(6, 0);
  const lines: string[] = [];
  const { result } = await trainLinked(root, join(root, 'model'), { train: { phase2: { epochs: 3 }, views: 3, averageLast: 3 } }, { log: (line) => lines.push(line) });
  const offer = lines.map((line) => /^weight average of covid-ct round 1 phase 2 epochs 1-3: validation loss ([\d.]+) against the best epoch's ([\d.]+): (kept|not kept)$/.exec(line)).find(Boolean);
  assert.ok(offer, lines.join('\n'));
  const bestEpoch = Math.min(...result.history.map((h) => h.val!.loss));
  assert.equal(offer[2], bestEpoch.toFixed(4));
  assert.equal(offer[3] === 'kept', Number(offer[1]) < bestEpoch);
  assert.equal(result.card.weightAverage, offer[3] === 'kept' ? 'covid-ct round 1 phase 2 epochs 1-3' : undefined);
});

test('weight averaging resumed inside the averaged epochs names only the epochs it averaged', async () => {
  const root = linkedDataset(6, 0);
  const out = join(root, 'model');
  const overrides = { train: { phase2: { epochs: 3 }, views: 3, averageLast: 3 } };
  let epochs = 0;
  // Phase 1's one epoch and phase 2's first, then Ctrl-C.
  await trainLinked(root, out, overrides, { onEpoch: () => epochs++, shouldStop: () => epochs >= 2 });
  const lines: string[] = [];
  await trainLinked(root, out, overrides, { resume: true, log: (line) => lines.push(line) });
  assert.ok(lines.some((line) => line.startsWith('weight average of covid-ct round 1 phase 2 epochs 2-3: ')), lines.join('\n'));
});
