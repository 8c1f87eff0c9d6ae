// Custom training loop for the trainable tail, on cached trunk activations: the trunk never enters the
// gradient tape, BatchNormalization runs in inference mode, Adam updates the tail's own variables.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { registerTrainingKernels } from '../kernels/index.ts';
import { Rng } from '../../data/random.ts';
import { exampleCount, gatherBatch, validateFeatureSet } from './dataset.ts';
import type { FeatureSet } from './dataset.ts';
import { localBatchGradients, trainableVariables, validateTailModel } from './gradients.ts';
import { validateOptions } from './options.ts';
import type { TailTrainingOptions } from './options.ts';
import { TailWorkerPool } from './parallel.ts';

export type TailTrainingResult = {
  /** Mean training loss of each epoch. */
  losses: number[];
  steps: number;
  /** Threads that shared each batch, this one included. */
  workers: number;
};

/** Trains `model` (the tail: input = cached activation, output = one logit) in place. */
export async function trainTail(model: tfl.LayersModel, data: FeatureSet, options: TailTrainingOptions): Promise<TailTrainingResult> {
  const settings = validateOptions(options);
  validateFeatureSet(data);
  validateTailModel(model, data.featureShape);
  if (tf.getBackend() === 'wasm') registerTrainingKernels();

  const variables = trainableVariables(model);
  const optimizer = tf.train.adam(settings.learningRate);
  const pool = settings.workers > 1 ? await TailWorkerPool.create(model, settings.workers - 1) : undefined;
  const batchGradients = pool ? pool.batchGradients(model, data.featureShape) : localBatchGradients(model, data.featureShape);
  const rng = new Rng(settings.seed);
  const count = exampleCount(data);
  const indices = Array.from({ length: count }, (_, i) => i);
  const losses: number[] = [];
  let steps = 0;
  try {
    for (let epoch = 0; epoch < settings.epochs; epoch++) {
      const order = rng.shuffled(indices);
      let lossSum = 0;
      for (let start = 0; start < count; start += settings.batchSize) {
        const batch = gatherBatch(data, order.slice(start, Math.min(start + settings.batchSize, count)));
        const { loss, gradients } = await batchGradients(batch.features, batch.labels);
        optimizer.applyGradients(variables.map((variable, i) => ({ name: variable.name, tensor: gradients[i]! })));
        tf.dispose(gradients);
        lossSum += loss * batch.labels.length;
        steps++;
      }
      const epochLoss = lossSum / count;
      losses.push(epochLoss);
      await settings.onEpochEnd?.(epoch, { loss: epochLoss });
    }
  } finally {
    optimizer.dispose();
    await pool?.terminate();
  }
  return { losses, steps, workers: settings.workers };
}
