// Refit (train.refit): choose the epoch on validation, then train again on training + validation images up to it.
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolveConfig } from '../../src/config/index.ts';
import { createEnsemble } from '../../src/inference/ensemble.ts';
import type { ModelCard } from '../../src/inference/model.ts';
import { cliWithData, linkedDataset, tailWeights, trainLinked } from '../fixtures/covid-ct.ts';

const REFIT = { train: { refit: true, phase1: { epochs: 2 }, phase2: { epochs: 3 }, views: 2 } };
const card = (dir: string) => JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as ModelCard;

test('refit: stops at the epoch chosen on validation, trains on validation images too, keeps the selection threshold', async () => {
  const root = linkedDataset(6, 0);
  const out = join(root, 'refit');
  const lines: string[] = [];
  let refitStart: { stopAfter: { round: number; phase: number; epoch: number }; images: number } | undefined;
  const { result } = await trainLinked(root, out, REFIT, { log: (line) => lines.push(line), onRefit: (stopAfter, images) => (refitStart = { stopAfter, images }) });

  const selection = card(join(out, 'selection'));
  const selectionHistory = JSON.parse(readFileSync(join(out, 'selection', 'history.json'), 'utf8')) as Array<{ phase: number; epoch: number; round: number; val: { loss: number; tp: number; fp: number; tn: number; fn: number }; train: { tp: number; fp: number; tn: number; fn: number } }>;
  // The selection run keeps the epoch with the lowest validation loss and says which it was.
  const losses = selectionHistory.map((h) => h.val.loss);
  const bestIndex = losses.indexOf(Math.min(...losses));
  const best = selectionHistory[bestIndex]!;
  assert.deepEqual(selection.checkpoint, { stage: 'covid-ct', round: best.round, phase: best.phase, epoch: best.epoch });

  // The refit runs exactly up to that epoch, on all 12 images (10 training + 2 validation), and keeps the selection's threshold.
  assert.deepEqual(refitStart, { stopAfter: { stage: 0, round: best.round, phase: best.phase, epoch: best.epoch }, images: 12 });
  // Its first 10 images are the selection run's, in the same places: their 2 views' trunk activations are reused.
  assert.ok(lines.some((line) => /^covid-ct: trunk activations for 2 views of 12 training and 2 validation images in [\d.]+ s \(20 training views reused from the previous run\)$/.test(line)), lines.join('\n'));
  assert.equal(result.history.length, bestIndex + 1);
  const counted = (c: { tp: number; fp: number; tn: number; fn: number }) => c.tp + c.fp + c.tn + c.fn;
  assert.equal(counted(selectionHistory[0]!.train), 10);
  assert.equal(counted(result.history[0]!.train as never), 12);
  const refit = card(out);
  assert.deepEqual(refit.refit, { selection: 'selection', trainImages: 12 });
  assert.deepEqual(refit.checkpoint, selection.checkpoint);
  assert.equal(refit.threshold, selection.threshold);
  assert.deepEqual(refit.validation, selection.validation);
  assert.equal(result.card.threshold, selection.threshold);
  // Its validation images were trained on: no held-out scores of its own.
  assert.ok(!existsSync(join(out, 'validation-predictions.json')));
  assert.notDeepEqual(await tailWeights(out), await tailWeights(join(out, 'selection')));

  await assert.rejects(createEnsemble([out, join(out, 'selection')], join(root, 'ensemble')), /refit \(trained on its validation images too\): ensemble members need held-out validation scores; give its selection run .*\/refit\/selection or a model trained with --no-refit/);
});

test('refit: after a pre-training stage, starts from the weights the selection run\'s pre-training ended with', async () => {
  const root = linkedDataset(6, 0);
  const overrides = { train: { ...REFIT.train, pretrainSchedule: { rounds: 1, phase1: { epochs: 1 }, phase2: { epochs: 2 }, views: 1 } } };
  const reused = join(root, 'reused');
  const lines: string[] = [];
  const stagesRun: string[] = [];
  const { result } = await trainLinked(root, reused, overrides, { pretrainingStage: true, log: (line) => lines.push(line), onEpoch: (e) => stagesRun.push(e.stage) });
  assert.ok(lines.some((line) => line === `stage 2 starts from the weights stage 1 ended with in ${join(reused, 'selection', 'stage-1-end')} (3 epochs not repeated)`), lines.join('\n'));
  assert.equal(stagesRun.filter((s) => s === 'pre').length, 3, 'pre-training ran once, in the selection run');
  // The refit's history still holds the whole schedule, pre-training included.
  const kept = card(reused).checkpoint!;
  assert.equal(result.history.length, 3 + (kept.phase === 1 ? kept.epoch : 2 + kept.epoch));

  // The same refit with the pre-training stage trained again ends with the same weights.
  const again = join(root, 'again');
  cpSync(join(reused, 'selection'), join(again, 'selection'), { recursive: true });
  rmSync(join(again, 'selection', 'stage-1-end'), { recursive: true });
  const againStages: string[] = [];
  await trainLinked(root, again, overrides, { pretrainingStage: true, resume: true, onEpoch: (e) => againStages.push(e.stage) });
  assert.equal(againStages.filter((s) => s === 'pre').length, 3);
  assert.deepEqual(await tailWeights(again), await tailWeights(reused));
});

/** A whole refit run, and the same run stopped (Ctrl-C) after `epochs` epochs: `stop` is what the stopped one returns. */
async function wholeAndStopped(epochs: number) {
  const root = linkedDataset(6, 0);
  const whole = join(root, 'whole');
  await trainLinked(root, whole, REFIT);
  const stopped = join(root, 'stopped');
  let done = 0;
  const stop = trainLinked(root, stopped, REFIT, { onEpoch: () => done++, shouldStop: () => done >= epochs });
  return { root, whole, stopped, stop };
}

test('refit: a run stopped during the refit and resumed ends with the weights of one never stopped', async () => {
  // All 5 selection epochs, then one refit epoch, then Ctrl-C.
  const { root, whole, stopped, stop } = await wholeAndStopped(6);
  await assert.rejects(stop, /refit stopped before its selected epoch: interrupted after covid-ct round 1 phase 1 epoch 1; no model saved \(continue with --resume\)/);
  assert.ok(!existsSync(join(stopped, 'model.json')));
  let resumedEpochs = 0;
  const { result } = await trainLinked(root, stopped, REFIT, { resume: true, onEpoch: () => resumedEpochs++ });
  assert.equal(resumedEpochs, result.history.length - 1, 'the selection run is not repeated, the refit continues');
  assert.deepEqual(await tailWeights(stopped), await tailWeights(whole));
  assert.equal(card(stopped).threshold, card(whole).threshold);
});

test('refit: a run stopped during its selection run and resumed finishes the selection, then refits', async () => {
  // Two of the selection run's 5 epochs, then Ctrl-C: it saves its best weights so far, as any run does.
  const { root, whole, stopped, stop } = await wholeAndStopped(2);
  const { result: first } = await stop;
  assert.match(first.stoppedEarly ?? '', /interrupted after covid-ct round 1 phase 1 epoch 2/);
  assert.ok(existsSync(join(stopped, 'selection', 'model.json')) && !existsSync(join(stopped, 'model.json')));
  await trainLinked(root, stopped, REFIT, { resume: true });
  assert.equal(JSON.parse(readFileSync(join(stopped, 'selection', 'history.json'), 'utf8')).length, 5, 'the selection run finished its schedule');
  assert.deepEqual(card(join(stopped, 'selection')).checkpoint, card(join(whole, 'selection')).checkpoint);
  assert.deepEqual(await tailWeights(stopped), await tailWeights(whole));
});

test('refit: refused with weight averaging, which keeps no single epoch to stop at', () => {
  assert.throws(() => resolveConfig({ train: { refit: true, averageLast: 5 } }), /config: train\.refit must be false when train\.averageLast > 0/);
  assert.throws(() => resolveConfig({ train: { refit: 'yes' as never } }), /config: train\.refit must be true or false, got "yes"/);
});

test('CLI: train --refit --evaluate says where it stops; evaluate --split val points to the selection run', () => {
  const root = linkedDataset(8, 4);
  const out = join(root, 'model');
  const cli = cliWithData(root);
  const run = cli('train', '--refit', '--epochs1', '1', '--epochs2', '2', '--rounds', '1', '--views', '1', '--out', out, '--evaluate');
  assert.equal(run.status, 0, run.stderr + run.stdout);
  assert.match(run.stdout, /refit: training again on 16 images \(training \+ validation\) up to round 1 phase \d epoch \d, the epoch chosen on validation; validation figures below are in-sample/);
  assert.match(run.stdout, new RegExp(`model saved to ${out} \\(threshold [\\d.]+, .*, from the selection run in ${join(out, 'selection')}\\)`));
  for (const file of ['model.json', 'tail/model.json', 'selection/model.json', 'evaluation/metrics.json']) assert.ok(existsSync(join(out, file)), file);
  assert.ok(readFileSync(join(out, 'evaluation', 'report.html'), 'utf8').includes(`validation: n/a (a refit trained on its validation images; its selection run ${join(out, 'selection')} has the held-out scores)`));
  const val = cli('evaluate', '--model', out, '--split', 'val');
  assert.notEqual(val.status, 0);
  assert.match(val.stderr, new RegExp(`--split val: ${out} is a refit, trained on its validation images too; evaluate its selection run ${join(out, 'selection')} instead`));
});
