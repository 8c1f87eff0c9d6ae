// The weight average against hand-worked means; its tensors are its own (the caller's are untouched).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { WeightAverage } from '../../src/training/weight-average.ts';
import { resolveConfig } from '../../src/config/index.ts';
import { useTfjsBackend } from '../engine/helpers.ts';

test('weight average: the element-wise mean of the sets added, the inputs left as they were', async () => {
  await useTfjsBackend();
  const sets = [
    new Map([['dense/0', tf.tensor([1, 2, 3])], ['dense/1', tf.tensor([10])]]),
    new Map([['dense/0', tf.tensor([3, 2, 1])], ['dense/1', tf.tensor([20])]]),
    new Map([['dense/0', tf.tensor([2, 8, 5])], ['dense/1', tf.tensor([-3])]]),
  ];
  const average = new WeightAverage();
  assert.throws(() => average.mean(), /nothing was added/);
  for (const set of sets) average.add(set);
  assert.equal(average.count, 3);
  const mean = average.mean();
  assert.deepEqual(Array.from(mean.get('dense/0')!.dataSync()), [2, 4, 3]);
  assert.ok(Math.abs(mean.get('dense/1')!.dataSync()[0]! - 9) < 1e-6);
  assert.deepEqual(Array.from(sets[0]!.get('dense/0')!.dataSync()), [1, 2, 3]);
  assert.throws(() => average.add(new Map([['other/0', tf.tensor([1])]])), /'other\/0' was not in the first set/);
  const before = tf.memory().numTensors;
  average.dispose();
  assert.equal(tf.memory().numTensors, before - 2, 'dispose frees the running sums');
  tf.dispose([...mean.values(), ...sets.flatMap((set) => [...set.values()])]);
});

test('config: train.averageLast is a whole number of phase-2 epochs', () => {
  assert.equal(resolveConfig({}).train.averageLast, 0);
  // The default refit stops at one epoch, which averaged weights do not have: averaging needs the refit off.
  assert.equal(resolveConfig({ train: { averageLast: 10, refit: false } }).train.averageLast, 10);
  assert.throws(() => resolveConfig({ train: { averageLast: 31 } }), /train\.averageLast.*\[0, train\.phase2\.epochs = 30\]/);
  assert.throws(() => resolveConfig({ train: { averageLast: 2.5 } }), /train\.averageLast/);
});
