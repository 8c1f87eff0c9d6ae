// efficientnet-b0 through the engine: ONNX forward = tfjs model, Keras index 221 as the cut, a training step on
// wasm, clear errors, and `backbone summary` for every registry backbone.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { buildTfjsModel, loadBackbone } from '../../src/engine/backbone.ts';
import { buildEfficientNetB0 } from '../../src/engine/efficientnet/model.ts';
import { saveKerasH5Weights } from '../../src/engine/h5/keras-h5.ts';
import { initWasmBackend, registerTrainingKernels } from '../../src/engine/kernels/index.ts';
import { listBackbones, resolveBackbone, resolveCut } from '../../src/engine/registry.ts';
import { backboneSummary } from '../../src/engine/summary.ts';
import { localBatchGradients, trainableVariables } from '../../src/engine/train/index.ts';
import { randomArray, relativeError } from '../engine/helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'covid-ct-b0-'));
const weights = join(dir, 'efficientnetb0_notop.h5');
const cacheDir = join(dir, 'cache');
let reference: tfl.LayersModel;
const images = randomArray(2 * 224 * 224 * 3, 11, 0, 255);

before(async () => {
  registerTrainingKernels();
  await initWasmBackend();
  reference = buildEfficientNetB0({ seed: 21, pooling: 'avg' });
  // Non-trivial BatchNorm and Normalization statistics, so that folding or a wrong order would show.
  let seed = 100;
  for (const layer of reference.layers) {
    const type = layer.getClassName();
    if (type !== 'BatchNormalization' && type !== 'Normalization') continue;
    const values = layer.getWeights().map((w, i) => {
      const variance = (type === 'BatchNormalization' && i === 3) || (type === 'Normalization' && i === 1);
      return tf.tensor(randomArray(w.size, seed++, variance ? 0.5 : -0.2, variance ? 1.5 : 0.2), w.shape);
    });
    layer.setWeights(values);
    tf.dispose(values);
  }
  await saveKerasH5Weights(reference, weights);
});
after(() => {
  reference.dispose();
  rmSync(dir, { recursive: true, force: true });
});

test('the ONNX forward pass equals the tfjs model, whole and as trunk (before Keras index 221) + tail', async () => {
  const expected = tf.tidy(() => (reference.predict(tf.tensor(images, [2, 224, 224, 3])) as tf.Tensor).dataSync());
  const whole = await loadBackbone('efficientnet-b0', { weights, cacheDir });
  const features = await whole.forward(images, 2);
  await whole.dispose();
  assert.ok(relativeError(features, expected) < 1e-4, `whole: ${relativeError(features, expected)}`);

  const trunk = await loadBackbone('efficientnet-b0', { weights, cacheDir, cut: '221' });
  assert.equal(trunk.cut, 'block7a_expand_conv');
  assert.equal(trunk.outputLayer, 'block6d_add');
  assert.deepEqual(trunk.outputShape, [7, 7, 192]);
  const activations = await trunk.forward(images, 2);
  await trunk.dispose();
  const tail = await buildTfjsModel('efficientnet-b0', { weights, cacheDir, from: '221' });
  // The tail is Keras's layers 221 onward: block 7a, top conv/bn/activation (and the pooling).
  assert.deepEqual(tail.layers.slice(1, 4).map((l) => l.name), ['block7a_expand_conv', 'block7a_expand_bn', 'block7a_expand_activation']);
  assert.deepEqual(tail.layers.slice(-4).map((l) => l.name), ['top_conv', 'top_bn', 'top_activation', 'avg_pool']);
  const pooled = tf.tidy(() => (tail.predict(tf.tensor(activations, [2, 7, 7, 192])) as tf.Tensor).dataSync());
  tail.dispose();
  assert.ok(relativeError(pooled, expected) < 1e-4, `trunk + tail: ${relativeError(pooled, expected)}`);
});

test('a training step of the tail from index 221 with a logit head runs on wasm and moves the weights', async () => {
  assert.equal(tf.getBackend(), 'wasm');
  const tail = await buildTfjsModel('efficientnet-b0', { weights, cacheDir, from: '221' });
  const head = tfl.layers.dense({ units: 1, name: 'head_logit' });
  const model = tfl.model({ inputs: tail.inputs, outputs: head.apply(tfl.layers.dropout({ rate: 0.1 }).apply(tail.outputs[0]!)) as tfl.SymbolicTensor });
  try {
    const shape = [7, 7, 192];
    const step = localBatchGradients(model, shape);
    const variables = trainableVariables(model);
    const optimizer = tf.train.adam(1e-3);
    const kernel = () => model.getLayer('block7a_expand_conv').getWeights()[0]!.dataSync().slice();
    const movingMean = () => model.getLayer('top_bn').getWeights()[2]!.dataSync().slice();
    const [kernelBefore, meanBefore] = [kernel(), movingMean()];
    const x = randomArray(4 * 7 * 7 * 192, 5, -1, 1);
    const y = Float32Array.of(0, 1, 1, 0);
    const { loss, gradients } = await step(x, y);
    assert.ok(Number.isFinite(loss) && loss > 0, `loss ${loss}`);
    assert.equal(gradients.length, variables.length);
    optimizer.applyGradients(variables.map((v, i) => ({ name: v.name, tensor: gradients[i]! })));
    tf.dispose(gradients);
    optimizer.dispose();
    assert.notDeepEqual(kernel(), kernelBefore);
    assert.deepEqual(movingMean(), meanBefore); // BatchNorm trains in inference mode: its statistics stay
  } finally {
    model.dispose();
  }
});

test('cuts, weights and files are validated with errors that say what to do', async () => {
  const b0 = resolveBackbone('efficientnet-b0', { weights });
  assert.equal(resolveCut(b0, '221'), 'block7a_expand_conv');
  assert.equal(resolveCut(b0, 'block7a'), 'block7a');
  assert.throws(() => resolveCut(b0, '0'), /layers 1 to 237/);
  assert.throws(() => resolveCut(b0, '999'), /layers 1 to 237/);
  assert.throws(() => resolveCut(resolveBackbone('mobilenet-v2'), '221'), /layer indices apply to Keras-format backbones only/);
  assert.throws(() => resolveBackbone('mobilenet-v2', { weights }), /--weights applies to Keras backbones only \(efficientnet-b0\)/);
  await assert.rejects(loadBackbone('efficientnet-b0', { weights: join(dir, 'absent.h5'), cacheDir }), /absent\.h5 not found\. Give one with --weights/);
  await assert.rejects(loadBackbone('efficientnet-b0', { weights, cacheDir, head: 'classifier' }), /has no classifier/);
});

test('backbone summary covers every backbone in the registry', async () => {
  for (const spec of listBackbones()) {
    if (!spec.build && !existsSync(spec.source)) continue; // the shared MobileNet files are absent on this machine
    const summary = await backboneSummary(spec.name, { cacheDir });
    assert.ok(summary.layers.length > 10 && summary.totalParams > 1e6, spec.name);
    assert.ok(summary.layers.some((l) => l.name === spec.featureLayer), `${spec.name}: ${spec.featureLayer}`);
    if (spec.name === 'efficientnet-b0') {
      assert.equal(summary.totalParams, 4_049_571);
      assert.equal(summary.layers.length, 238); // Keras's 237 + avg_pool (pooling='avg')
    }
  }
  await assert.rejects(backboneSummary('resnet'), /valid names: mobilenet-v2, mobilenet-v1, efficientnet-b0/);
  assert.equal((await backboneSummary('efficientnet-b0', { includeTop: true })).totalParams, 5_330_571);
});
