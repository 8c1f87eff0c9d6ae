// IR passes (BatchNorm folding, cuts), the tfjs-model-directory path, the registry's errors and the cache.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import * as ort from 'onnxruntime-node';
import { loadBackbone } from '../../src/engine/backbone.ts';
import { cutTensor, foldBatchNorm, GraphError, inferShapes, withInputSize, type BatchNormOp, type Conv2dOp, type Graph } from '../../src/engine/ir.ts';
import { exportOnnx } from '../../src/engine/onnx/export.ts';
import { resolveBackbone } from '../../src/engine/registry.ts';
import { buildTfjsLayersModel } from '../../src/engine/tfjs.ts';
import { saveTfjsLayersModel } from '../../src/engine/tfjs-io.ts';
import { randomArray, relativeError, useTfjsBackend } from './helpers.ts';

/** conv (3x3, stride 2, SAME) -> BN -> relu6 -> depthwise -> BN -> add with a 1x1 conv branch -> global pool -> dense. */
function tinyGraph(): Graph {
  const r = (n: number, seed: number, low = -1, high = 1): Float32Array => randomArray(n, seed, low, high);
  const bn = (name: string, input: string, c: number, seed: number): BatchNormOp =>
    ({ kind: 'batchNorm', name, inputs: [input], gamma: r(c, seed, 0.5, 1.5), beta: r(c, seed + 1), mean: r(c, seed + 2), variance: r(c, seed + 3, 0.2, 2), epsilon: 1e-3 });
  return {
    input: 'input',
    inputShape: [9, 7, 3],
    output: 'logits',
    ops: [
      { kind: 'conv2d', name: 'stem', inputs: ['input'], kernel: r(3 * 3 * 3 * 4, 1), kernelShape: [3, 3, 3, 4], bias: null, strides: [2, 2], dilations: [1, 1], padding: 'same', activation: 'linear' },
      bn('stem_bn', 'stem', 4, 10),
      { kind: 'activation', name: 'stem_relu', inputs: ['stem_bn'], activation: 'relu6' },
      { kind: 'depthwiseConv2d', name: 'block_1_depthwise', inputs: ['stem_relu'], kernel: r(3 * 3 * 4 * 2, 2), kernelShape: [3, 3, 4, 2], bias: r(8, 3), strides: [1, 1], dilations: [1, 1], padding: 'same', activation: 'linear' },
      bn('block_1_bn', 'block_1_depthwise', 8, 20),
      { kind: 'conv2d', name: 'block_1_branch', inputs: ['stem_relu'], kernel: r(4 * 8, 4), kernelShape: [1, 1, 4, 8], bias: r(8, 5), strides: [1, 1], dilations: [1, 1], padding: 'valid', activation: 'relu' },
      { kind: 'add', name: 'block_1_add', inputs: ['block_1_bn', 'block_1_branch'], activation: 'relu6' },
      { kind: 'conv2d', name: 'block_2_conv', inputs: ['block_1_add'], kernel: r(8 * 8, 6), kernelShape: [1, 1, 8, 8], bias: null, strides: [1, 1], dilations: [1, 1], padding: 'valid', activation: 'relu' },
      { kind: 'globalAveragePool', name: 'pool', inputs: ['block_2_conv'], keepDims: false },
      { kind: 'dense', name: 'logits', inputs: ['pool'], kernel: r(8 * 5, 7), kernelShape: [8, 5], bias: r(5, 8), activation: 'linear' },
    ],
  };
}

async function runOnnx(bytes: Uint8Array, data: Float32Array, shape: number[]): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    return (await session.run({ input: new ort.Tensor('float32', data, shape) })).output!.data as Float32Array;
  } finally {
    await session.release();
  }
}

test('BatchNorm folding: folded ONNX graph matches tfjs with BatchNormalization layers in inference mode', async () => {
  await useTfjsBackend();
  const graph = tinyGraph();
  const folded = foldBatchNorm(graph);
  assert.deepEqual(folded.ops.filter((op) => op.kind === 'batchNorm').map((op) => op.name), []);
  assert.ok(folded.ops.some((op) => op.name === 'stem_bn' && op.kind === 'conv2d'), 'the folded conv takes the BatchNorm name');
  const x = randomArray(3 * 9 * 7 * 3, 11, -2, 2);
  const model = buildTfjsLayersModel(graph);
  const expected = tf.tidy(() => (model.predict(tf.tensor(x, [3, 9, 7, 3])) as tf.Tensor).dataSync() as Float32Array);
  model.dispose();
  const actual = await runOnnx(exportOnnx(graph), x, [3, 9, 7, 3]);
  assert.ok(relativeError(actual, expected) < 1e-5, String(relativeError(actual, expected)));
});

test('cuts: a block prefix cuts at its first layer; a cut crossed by a skip connection is refused', () => {
  const graph = tinyGraph();
  assert.equal(cutTensor(graph, 'block_2'), 'block_1_add');
  assert.throws(() => cutTensor(graph, 'block_1_bn'), /skip connection/);
  assert.throws(() => cutTensor(graph, 'block_9'), /cut 'block_9' names no layer/);
});

test('tfjs layers model directory: loads by path with a feature layer, runs on ONNX Runtime like tfjs, cached by hash and cut', async () => {
  await useTfjsBackend();
  const dir = mkdtempSync(join(tmpdir(), 'engine-tfjs-'));
  try {
    const input = tfl.input({ shape: [8, 8, 3], name: 'image' });
    let x = tfl.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'same', useBias: false, name: 'block_1_conv' }).apply(input) as tfl.SymbolicTensor;
    x = tfl.layers.batchNormalization({ name: 'block_1_bn' }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.reLU({ maxValue: 6, name: 'block_1_relu' }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', activation: 'relu6', name: 'block_2_depthwise' }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.globalAveragePooling2d({ name: 'pool' }).apply(x) as tfl.SymbolicTensor;
    const out = tfl.layers.dense({ units: 3, activation: 'softmax', name: 'head' }).apply(x) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: out });
    // Non-trivial BatchNorm statistics, so folding is exercised.
    const bn = model.getLayer('block_1_bn');
    const stats = bn.getWeights().map((w, i) => tf.tensor(randomArray(w.size, 30 + i, i === 3 ? 0.5 : -1, i === 3 ? 2 : 1), w.shape));
    bn.setWeights(stats);
    tf.dispose(stats);
    await saveTfjsLayersModel(model, join(dir, 'model'));

    const pixels = randomArray(2 * 8 * 8 * 3, 5, 0, 1);
    const features = model.getLayer('pool');
    const featureModel = tfl.model({ inputs: model.inputs, outputs: features.output as tfl.SymbolicTensor });
    const expected = tf.tidy(() => (featureModel.predict(tf.tensor(pixels, [2, 8, 8, 3])) as tf.Tensor).dataSync() as Float32Array);
    model.dispose();

    const cacheDir = join(dir, 'cache');
    assert.throws(() => resolveBackbone(join(dir, 'model', 'model.json')), /needs a feature layer/);
    const backbone = await loadBackbone(join(dir, 'model', 'model.json'), { featureLayer: 'pool', cacheDir });
    const trunk = await loadBackbone(join(dir, 'model'), { featureLayer: 'pool', cacheDir, cut: 'block_2' });
    try {
      assert.deepEqual(backbone.outputShape, [6]);
      assert.deepEqual(trunk.outputShape, [4, 4, 6]);
      const actual = await backbone.forward(pixels, 2);
      assert.ok(relativeError(actual, expected) < 1e-5, String(relativeError(actual, expected)));
      const files = readdirSync(cacheDir).sort();
      assert.equal(files.length, 2);
      assert.ok(files.some((f) => f.endsWith('-full.onnx')) && files.some((f) => f.endsWith('-cut-block_2.onnx')), files.join(', '));
      await assert.rejects(backbone.forward(new Float32Array(10), 1), /10 values for 1 images/);
      // A tfjs tensor is accepted as input too.
      const fromTensor = tf.tensor(pixels, [2, 8, 8, 3]);
      assert.deepEqual(await backbone.forward(fromTensor), actual);
      fromTensor.dispose();
      await assert.rejects(backbone.forward(tf.zeros([1, 4, 4, 3])), /tensor shape \[1, 4, 4, 3\]/);
    } finally {
      await backbone.dispose();
      await trunk.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('registry and options: bad names and option values are errors naming them', async () => {
  assert.throws(() => resolveBackbone('mobilenet-v3'), /unknown backbone 'mobilenet-v3'; valid names: mobilenet-v2, mobilenet-v1/);
  await assert.rejects(loadBackbone('mobilenet-v2', { batchSize: 0 }), /batchSize must be a positive integer/);
  await assert.rejects(loadBackbone('mobilenet-v2', { threads: 1.5 }), /threads must be a positive integer/);
  await assert.rejects(loadBackbone('mobilenet-v2', { head: 'logits' as never }), /head must be one of features, classifier/);
  await assert.rejects(loadBackbone('mobilenet-v1', { head: 'classifier' }), /has no classifier/);
  await assert.rejects(loadBackbone('mobilenet-v2', { cut: 'block_99' }), /cut 'block_99' names no layer/);
  await assert.rejects(loadBackbone('mobilenet-v2', { featureLayer: 'nope' }), /feature layer 'nope' is not a layer/);
});

test('input size: a pool over its whole input grows with it, a smaller pool stays, a fixed-size reshape is refused', () => {
  const conv: Conv2dOp = { kind: 'conv2d', name: 'conv', inputs: ['input'], kernel: randomArray(3 * 3 * 2 * 4, 3), kernelShape: [3, 3, 2, 4], bias: null, strides: [2, 2], dilations: [1, 1], padding: 'same', activation: 'relu' };
  const graph: Graph = {
    input: 'input',
    inputShape: [8, 8, 2],
    output: 'features',
    ops: [
      conv,
      { kind: 'averagePool2d', name: 'local', inputs: ['conv'], poolSize: [2, 2], strides: [1, 1], padding: 'same' },
      { kind: 'averagePool2d', name: 'global', inputs: ['local'], poolSize: [4, 4], strides: [2, 2], padding: 'valid' },
      { kind: 'reshape', name: 'features', inputs: ['global'], targetShape: [4] },
    ],
  };
  assert.equal(withInputSize(graph, 8), graph);
  const larger = withInputSize(graph, 20);
  assert.deepEqual(larger.inputShape, [20, 20, 2]);
  assert.equal(larger.ops.find((op) => op.name === 'local')!.kind, 'averagePool2d');
  assert.deepEqual(larger.ops.find((op) => op.name === 'global'), { kind: 'averagePool2d', name: 'global', inputs: ['local'], poolSize: [10, 10], strides: [10, 10], padding: 'valid' });
  assert.deepEqual(inferShapes(larger).get('features'), [4]);

  const flattening: Graph = { ...graph, ops: [conv, { kind: 'reshape', name: 'features', inputs: ['conv'], targetShape: [64] }] };
  assert.throws(() => withInputSize(flattening, 20), (error: Error) => error instanceof GraphError && /cannot take 20x20 inputs/.test(error.message));
});
