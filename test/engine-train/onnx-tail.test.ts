// The ONNX Runtime tail: loss and gradients against tfjs autodiff on tails covering every supported layer.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { Rng } from '../../src/data/random.ts';
import { initWasmBackend, registerTrainingKernels } from '../../src/engine/kernels/index.ts';
import { dropoutMask, OnnxTail, tailGradients, tailLogits, trainableVariables, UnsupportedTailError } from '../../src/engine/train/index.ts';
import { randomArray, relativeError } from '../engine/helpers.ts';

before(async () => {
  registerTrainingKernels();
  await initWasmBackend();
});

/** Random weights in [-0.5, 0.5) (biases too), so relu6 clips some units and zeroes others. */
function randomise(model: tfl.LayersModel, seed: number): void {
  model.setWeights(model.getWeights().map((w, i) => tf.tensor(randomArray(w.size, seed + i, -0.5, 0.5), w.shape)));
}

/** Pointwise expand -> depthwise 3x3 stride 1 -> project -> residual add -> ReLU layer -> global pool -> dense. */
function residualTail(): tfl.LayersModel {
  const input = tfl.input({ shape: [7, 7, 6] });
  const expand = tfl.layers.conv2d({ filters: 12, kernelSize: 1, activation: 'relu6', name: 'expand' }).apply(input) as tfl.SymbolicTensor;
  const depthwise = tfl.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', activation: 'relu6', name: 'depthwise' }).apply(expand) as tfl.SymbolicTensor;
  const project = tfl.layers.conv2d({ filters: 6, kernelSize: 1, name: 'project' }).apply(depthwise) as tfl.SymbolicTensor;
  const added = tfl.layers.add({ name: 'add' }).apply([project, input]) as tfl.SymbolicTensor;
  const relu = tfl.layers.reLU({ maxValue: 6, name: 'relu' }).apply(added) as tfl.SymbolicTensor;
  const last = tfl.layers.conv2d({ filters: 10, kernelSize: 1, activation: 'relu', name: 'last' }).apply(relu) as tfl.SymbolicTensor;
  const pooled = tfl.layers.averagePooling2d({ poolSize: 7, padding: 'valid', name: 'pool' }).apply(last) as tfl.SymbolicTensor;
  const flat = tfl.layers.reshape({ targetShape: [10], name: 'flat' }).apply(pooled) as tfl.SymbolicTensor;
  const dropped = tfl.layers.dropout({ rate: 0, name: 'dropout' }).apply(flat) as tfl.SymbolicTensor;
  const logit = tfl.layers.dense({ units: 1, name: 'logit' }).apply(dropped) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: logit });
}

/** Strided depthwise layers (VALID on an odd size, SAME), a frozen first layer and a bias-free convolution. */
function stridedTail(): tfl.LayersModel {
  const input = tfl.input({ shape: [9, 8, 5] });
  const frozen = tfl.layers.conv2d({ filters: 5, kernelSize: 1, activation: 'relu', name: 'frozen', trainable: false }).apply(input) as tfl.SymbolicTensor;
  const valid = tfl.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'valid', activation: 'relu6', name: 'dw_valid' }).apply(frozen) as tfl.SymbolicTensor;
  const same = tfl.layers.depthwiseConv2d({ kernelSize: [3, 2], strides: 2, padding: 'same', name: 'dw_same' }).apply(valid) as tfl.SymbolicTensor;
  const mixed = tfl.layers.conv2d({ filters: 4, kernelSize: 1, useBias: false, name: 'mixed' }).apply(same) as tfl.SymbolicTensor;
  const pooled = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(mixed) as tfl.SymbolicTensor;
  const logit = tfl.layers.dense({ units: 1, name: 'logit' }).apply(pooled) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: logit });
}

async function compareWithTfjs(model: tfl.LayersModel, featureShape: number[], count: number, seed: number, shiftMatrixLimit?: number): Promise<void> {
  randomise(model, seed);
  const per = featureShape.reduce((a, b) => a * b, 1);
  const features = randomArray(count * per, seed + 100, -3, 3);
  const labels = Float32Array.from({ length: count }, (_, i) => i % 2);
  const tail = await OnnxTail.create(model, featureShape, { threads: 2, ...(shiftMatrixLimit !== undefined && { shiftMatrixLimit }) });
  try {
    const ours = await tail.batchGradients(features, labels);
    const reference = tailGradients(model, trainableVariables(model), tf.tensor(features, [count, ...featureShape]), tf.tensor1d(labels), { fuse: false });
    assert.ok(Math.abs(ours.loss - reference.loss.dataSync()[0]!) < 1e-5, `loss ${ours.loss} vs ${reference.loss.dataSync()[0]}`);
    assert.equal(ours.gradients.length, reference.gradients.length);
    model.trainableWeights.forEach((weight, i) => {
      const expected = reference.gradients[i]!.dataSync();
      assert.deepEqual(ours.gradients[i]!.shape, reference.gradients[i]!.shape, weight.name);
      assert.ok(expected.some((v) => v !== 0), `${weight.name}: the reference gradient is all zero, the case proves nothing`);
      const error = relativeError(ours.gradients[i]!.dataSync(), expected);
      assert.ok(error < 1e-4, `${weight.name}: relative error ${error}`);
    });
    const logits = await tail.outputs(features, 5); // several runs of 5, the last one short
    const expectedLogits = tailLogits(model, tf.tensor(features, [count, ...featureShape])).dataSync();
    assert.ok(relativeError(logits, expectedLogits) < 1e-4);
    tf.dispose([...ours.gradients, ...reference.gradients, reference.loss]);
  } finally {
    await tail.dispose();
  }
}

test('ONNX tail gradients match tfjs on a residual MobileNetV2-like block', async () => {
  await compareWithTfjs(residualTail(), [7, 7, 6], 12, 1);
});

test('ONNX tail gradients match tfjs with strided depthwise layers and a frozen layer', async () => {
  const model = stridedTail();
  assert.ok(!model.trainableWeights.some((w) => w.name.startsWith('frozen')));
  await compareWithTfjs(model, [9, 8, 5], 7, 2);
});

test('the grouped-Conv depthwise path (large maps) matches tfjs too: stride 1 and strided, SAME and VALID', async () => {
  await compareWithTfjs(residualTail(), [7, 7, 6], 6, 4, 0);
  await compareWithTfjs(stridedTail(), [9, 8, 5], 5, 5, 0);
});

test('the dropout mask of a batch follows its key, and the head gradient uses it', async () => {
  const input = tfl.input({ shape: [6] });
  const logit = tfl.layers.dense({ units: 1, name: 'logit' }).apply(tfl.layers.dropout({ rate: 0.5, name: 'drop' }).apply(input) as tfl.SymbolicTensor) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: logit });
  randomise(model, 3);
  const count = 8;
  const features = randomArray(count * 6, 7, -1, 1);
  const labels = Float32Array.from({ length: count }, (_, i) => (i < 3 ? 1 : 0));
  const tail = await OnnxTail.create(model, [6], { threads: 1 });
  try {
    const first = await tail.batchGradients(features, labels, 42);
    const again = await tail.batchGradients(features, labels, 42);
    const other = await tail.batchGradients(features, labels, 43);
    assert.deepEqual(first.gradients[0]!.dataSync(), again.gradients[0]!.dataSync());
    assert.notDeepEqual(first.gradients[0]!.dataSync(), other.gradients[0]!.dataSync());
    // By hand: z = (x * mask) . w + b, dL/dw = sum_n (sigmoid(z_n) - y_n) / N * x_n * mask_n.
    const mask = dropoutMask(new Rng(42), count, 6, 0.5);
    assert.ok(mask.some((v) => v === 0) && mask.some((v) => v === 2));
    const [w, b] = model.getWeights().map((t) => t.dataSync());
    const expected = new Float32Array(6);
    for (let n = 0; n < count; n++) {
      let z = b![0]!;
      for (let k = 0; k < 6; k++) z += features[n * 6 + k]! * mask[n * 6 + k]! * w![k]!;
      const residual = (1 / (1 + Math.exp(-z)) - labels[n]!) / count;
      for (let k = 0; k < 6; k++) expected[k] = expected[k]! + residual * features[n * 6 + k]! * mask[n * 6 + k]!;
    }
    assert.ok(relativeError(first.gradients[0]!.dataSync(), expected) < 1e-5);
    tf.dispose([...first.gradients, ...again.gradients, ...other.gradients]);
  } finally {
    await tail.dispose();
  }
});

test('a tail with a layer the ONNX graph does not cover is refused by name', async () => {
  const input = tfl.input({ shape: [5, 5, 3] });
  const conv = tfl.layers.conv2d({ filters: 4, kernelSize: 3, name: 'full_3x3' }).apply(input) as tfl.SymbolicTensor;
  const logit = tfl.layers.dense({ units: 1 }).apply(tfl.layers.globalAveragePooling2d({}).apply(conv) as tfl.SymbolicTensor) as tfl.SymbolicTensor;
  await assert.rejects(OnnxTail.create(tfl.model({ inputs: input, outputs: logit }), [5, 5, 3]), (error: unknown) => error instanceof UnsupportedTailError && /full_3x3/.test(error.message));
});
