// A small convolutional tail and a separable synthetic task for the training tests.
import * as tfl from '@tensorflow/tfjs-layers';
import { Rng } from '../../src/data/random.ts';
import type { FeatureSet } from '../../src/engine/train/dataset.ts';

export const SIZE = 9;
export const CHANNELS = 3;

/** Positive examples carry horizontal stripes, negatives vertical ones, both under noise and random phase. */
export function stripesTask(count: number, seed: number): FeatureSet {
  const rng = new Rng(seed);
  const perExample = SIZE * SIZE * CHANNELS;
  const features = new Float32Array(count * perExample);
  const labels = new Float32Array(count);
  for (let n = 0; n < count; n++) {
    const label = n % 2;
    labels[n] = label;
    const phase = rng.int(2);
    for (let row = 0; row < SIZE; row++) {
      for (let col = 0; col < SIZE; col++) {
        const stripe = ((label === 1 ? row : col) + phase) % 2;
        for (let c = 0; c < CHANNELS; c++) {
          features[((n * SIZE + row) * SIZE + col) * CHANNELS + c] = stripe + (rng.next() - 0.5) * 0.8;
        }
      }
    }
  }
  return { features, featureShape: [SIZE, SIZE, CHANNELS], labels };
}

/** conv 3x3 stride 2 -> depthwise 3x3 -> BN -> ReLU6 -> conv 1x1 -> GAP -> dropout -> dense(1) logit. */
export function tinyCnn(seed: number): tfl.LayersModel {
  const init = (offset: number) => tfl.initializers.glorotUniform({ seed: seed + offset });
  const input = tfl.input({ shape: [SIZE, SIZE, CHANNELS] });
  let x = tfl.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: init(1), name: 'conv' }).apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', useBias: false, depthwiseInitializer: init(2), name: 'depthwise' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.batchNormalization({ name: 'depthwise_bn' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.reLU({ maxValue: 6, name: 'depthwise_relu' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.conv2d({ filters: 8, kernelSize: 1, activation: 'relu', kernelInitializer: init(3), name: 'project' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.globalAveragePooling2d({ name: 'pool' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.dropout({ rate: 0.1, seed, name: 'dropout' }).apply(x) as tfl.SymbolicTensor;
  const logit = tfl.layers.dense({ units: 1, kernelInitializer: init(4), name: 'logit' }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: logit });
}
