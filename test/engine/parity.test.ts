// ONNX Runtime and tfjs-layers builds of every built-in backbone agree on random inputs (full, trunk and tail).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { backboneGraph, buildTfjsModel, loadBackbone } from '../../src/engine/backbone.ts';
import { buildTfjsLayersModel } from '../../src/engine/tfjs.ts';
import { BUILTIN_BACKBONES } from '../../src/engine/registry.ts';
import { randomArray, relativeError, useTfjsBackend } from './helpers.ts';

const BATCH = 2;
const TOLERANCE = 1e-4;

function predict(model: { predict: (x: tf.Tensor) => tf.Tensor | tf.Tensor[] }, data: Float32Array, shape: number[]): Float32Array {
  return tf.tidy(() => (model.predict(tf.tensor(data, shape)) as tf.Tensor).dataSync() as Float32Array);
}

// Backbones whose weights ship with ../shared; the Keras .h5 ones (no weight file here) are checked with a
// written weight file in test/efficientnet.
for (const spec of Object.values(BUILTIN_BACKBONES).filter((s) => s.format !== 'keras-h5')) {
  const cut = spec.unfreezePoints[1]!;
  test(`${spec.name}: ONNX and tfjs agree within 1e-4 on the full backbone, the trunk before ${cut} and the tail from it`, async () => {
    await useTfjsBackend();
    const size = spec.inputSize;
    const pixels = randomArray(BATCH * size * size * 3, 7, 0, 255);
    const full = await loadBackbone(spec.name);
    const trunk = await loadBackbone(spec.name, { cut });
    try {
      assert.equal(full.inputSize, size);
      const features = await full.forward(pixels, BATCH);
      assert.equal(features.length, BATCH * full.outputSize);

      const model = await buildTfjsModel(spec.name);
      const reference = predict(model, pixels, [BATCH, size, size, 3]);
      model.dispose();
      assert.ok(relativeError(features, reference) < TOLERANCE, `full: ${relativeError(features, reference)}`);

      const activation = await trunk.forward(pixels, BATCH);
      assert.equal(trunk.outputShape.length, 3);
      const trunkModel = buildTfjsLayersModel(await backboneGraph(spec.name, { cut, part: 'trunk' }));
      const trunkReference = predict(trunkModel, pixels, [BATCH, size, size, 3]);
      trunkModel.dispose();
      assert.ok(relativeError(activation, trunkReference) < TOLERANCE, `trunk: ${relativeError(activation, trunkReference)}`);

      // The trainable tail takes the cached trunk activation and must give back the backbone's features.
      const tail = await buildTfjsModel(spec.name, { from: cut });
      assert.ok(tail.layers.some((layer) => layer.name.startsWith(`${cut}_`) || layer.name === cut));
      assert.deepEqual(tail.inputs[0]!.shape.slice(1), [...trunk.outputShape]);
      const tailFeatures = predict(tail, activation, [BATCH, ...trunk.outputShape]);
      tail.dispose();
      assert.ok(relativeError(tailFeatures, features) < TOLERANCE, `tail: ${relativeError(tailFeatures, features)}`);
    } finally {
      await full.dispose();
      await trunk.dispose();
    }
  });
}

test('mobilenet-v2 at a 320-pixel input: the pool grows to 10x10, ONNX and tfjs agree, trunk + tail give the features', async () => {
  await useTfjsBackend();
  const size = 320;
  const cut = 'block_16';
  const pixels = randomArray(BATCH * size * size * 3, 11, 0, 255);
  const full = await loadBackbone('mobilenet-v2', { inputSize: size });
  const trunk = await loadBackbone('mobilenet-v2', { cut, inputSize: size });
  try {
    assert.equal(full.inputSize, size);
    assert.equal(full.outputSize, 1280);
    assert.deepEqual([...trunk.outputShape], [10, 10, 160]);
    const features = await full.forward(pixels, BATCH);
    const model = await buildTfjsModel('mobilenet-v2', { inputSize: size });
    const reference = predict(model, pixels, [BATCH, size, size, 3]);
    model.dispose();
    assert.ok(relativeError(features, reference) < TOLERANCE, `full: ${relativeError(features, reference)}`);
    const tail = await buildTfjsModel('mobilenet-v2', { from: cut, inputSize: size });
    const tailFeatures = predict(tail, await trunk.forward(pixels, BATCH), [BATCH, ...trunk.outputShape]);
    tail.dispose();
    assert.ok(relativeError(tailFeatures, features) < TOLERANCE, `tail: ${relativeError(tailFeatures, features)}`);
    // The backbone's own size leaves the graph as it is.
    const own = await backboneGraph('mobilenet-v2', { inputSize: 224 });
    assert.deepEqual(own, await backboneGraph('mobilenet-v2'));
  } finally {
    await full.dispose();
    await trunk.dispose();
  }
});
