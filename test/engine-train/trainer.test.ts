// The tail trainer on wasm with the training kernels: learning, inference-mode BatchNorm, options, workers.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { initWasmBackend, registerTrainingKernels } from '../../src/engine/kernels/index.ts';
import { localBatchGradients, runTail, tailLogits, trainTail, TailWorkerPool } from '../../src/engine/train/index.ts';
import { gatherBatch } from '../../src/engine/train/dataset.ts';
import { stripesTask, tinyCnn } from './tiny-cnn.ts';

before(async () => {
  registerTrainingKernels();
  await initWasmBackend();
});

function accuracy(model: tfl.LayersModel, data: ReturnType<typeof stripesTask>): number {
  const logits = tailLogits(model, tf.tensor(data.features, [data.labels.length, ...data.featureShape]));
  const values = logits.dataSync();
  logits.dispose();
  let correct = 0;
  for (let i = 0; i < data.labels.length; i++) correct += Number((values[i]! > 0 ? 1 : 0) === data.labels[i]);
  return correct / data.labels.length;
}

test('a tiny CNN with a depthwise layer learns a separable task above 95 % on wasm', async () => {
  assert.equal(tf.getBackend(), 'wasm');
  const model = tinyCnn(7);
  // Non-trivial moving statistics, so that using batch statistics instead would show.
  const bn = model.getLayer('depthwise_bn');
  const [gamma, beta] = [bn.getWeights()[0]!, bn.getWeights()[1]!];
  bn.setWeights([gamma, beta, tf.fill([8], 0.1), tf.fill([8], 0.5)]);
  const train = stripesTask(256, 1);
  const heldOut = stripesTask(128, 2);
  const losses: number[] = [];
  const tensorsBefore = tf.memory().numTensors;
  const result = await trainTail(model, train, {
    epochs: 12, batchSize: 32, learningRate: 0.01, seed: 3, onEpochEnd: (_epoch, logs) => { losses.push(logs.loss); },
  });
  assert.deepEqual(result.losses, losses);
  assert.equal(result.steps, 12 * 8);
  assert.ok(losses.at(-1)! < losses[0]!, `loss went from ${losses[0]} to ${losses.at(-1)}`);
  assert.ok(tf.memory().numTensors <= tensorsBefore, 'training leaked tensors');
  const heldOutAccuracy = accuracy(model, heldOut);
  assert.ok(heldOutAccuracy > 0.95, `held-out accuracy ${heldOutAccuracy}`);
  const [, , movingMean, movingVariance] = bn.getWeights();
  assert.deepEqual(Array.from(movingMean!.dataSync()), new Array(8).fill(0.1).map((v) => Math.fround(v)));
  assert.deepEqual(Array.from(movingVariance!.dataSync()), new Array(8).fill(0.5));
});

test('BatchNormalization runs on moving statistics while training', () => {
  const input = tfl.input({ shape: [4] });
  const bn = tfl.layers.batchNormalization({ epsilon: 0 });
  const model = tfl.model({ inputs: input, outputs: bn.apply(input) as tfl.SymbolicTensor });
  bn.setWeights([tf.tensor1d([2, 2, 2, 2]), tf.tensor1d([1, 1, 1, 1]), tf.tensor1d([0, 0, 0, 0]), tf.tensor1d([4, 4, 4, 4])]);
  const x = tf.tensor2d([[1, 2, 3, 4], [5, 6, 7, 8]]);
  const y = runTail(model, x, true);
  // (x - 0) / sqrt(4) * 2 + 1 = x + 1; batch statistics would give +-1 * 2 + 1.
  assert.deepEqual(Array.from(y.dataSync()), [2, 3, 4, 5, 6, 7, 8, 9]);
  tf.dispose([x, y]);
});

test('trainTail validates its options and data, naming the culprit', async () => {
  const model = tinyCnn(1);
  const data = stripesTask(8, 1);
  const good = { epochs: 1, batchSize: 4, learningRate: 0.01, seed: 1 };
  await assert.rejects(trainTail(model, data, { ...good, epochs: 0 }), /epochs/);
  await assert.rejects(trainTail(model, data, { ...good, batchSize: 2.5 }), /batchSize/);
  await assert.rejects(trainTail(model, data, { ...good, learningRate: -1 }), /learningRate/);
  await assert.rejects(trainTail(model, data, { ...good, seed: Number.NaN }), /seed/);
  await assert.rejects(trainTail(model, data, { ...good, workers: 0 }), /workers/);
  await assert.rejects(trainTail(model, { ...data, labels: [1, 0] }, good), /features has/);
  await assert.rejects(trainTail(model, { ...data, featureShape: [9, 9, 4], features: new Float32Array(8 * 324) }, good), /takes inputs of shape/);
  const withSigmoid = tfl.sequential({ layers: [tfl.layers.flatten({ inputShape: [9, 9, 3] }), tfl.layers.dense({ units: 1, activation: 'sigmoid' })] });
  await assert.rejects(trainTail(withSigmoid, data, good), /logits/);
});

test('a worker thread computes the same gradients as this thread', async () => {
  const model = tinyCnn(5);
  const data = stripesTask(32, 4);
  const batch = gatherBatch(data, Array.from({ length: 32 }, (_, i) => i));
  // Dropout draws differ between threads; compare without it.
  (model.getLayer('dropout') as unknown as { rate: number }).rate = 0;
  const pool = await TailWorkerPool.create(model, 1);
  try {
    const shared = await pool.batchGradients(model, data.featureShape)(batch.features, batch.labels);
    const alone = await localBatchGradients(model, data.featureShape)(batch.features, batch.labels);
    assert.ok(Math.abs(shared.loss - alone.loss) < 1e-5, `loss ${shared.loss} vs ${alone.loss}`);
    shared.gradients.forEach((g, i) => {
      const a = g.dataSync();
      const b = alone.gradients[i]!.dataSync();
      const scale = Math.max(1e-6, ...Array.from(b, Math.abs));
      const diff = Math.max(...Array.from(a, (v, k) => Math.abs(v - b[k]!)));
      assert.ok(diff / scale < 1e-4, `gradient ${i}: relative difference ${diff / scale}`);
    });
    tf.dispose([...shared.gradients, ...alone.gradients]);
  } finally {
    await pool.terminate();
  }
});
