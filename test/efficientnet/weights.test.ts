// Keras HDF5 weight files: a file written here in Keras's layout loads back exactly; mismatches are listed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import h5wasm from 'h5wasm/node';
import { buildEfficientNetB0 } from '../../src/engine/efficientnet/model.ts';
import { KerasH5Error, loadKerasH5Weights, readKerasH5Weights, saveKerasH5Weights } from '../../src/engine/h5/keras-h5.ts';
import { randomArray, useTfjsBackend } from '../engine/helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'covid-ct-h5-'));
before(async () => {
  await useTfjsBackend();
  await h5wasm.ready;
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Keras's legacy save_weights layout, written with h5wasm directly: root layer_names; per layer weight_names and datasets. */
function writeKerasLayout(path: string, layers: Array<{ name: string; weights: Array<{ name: string; shape: number[]; values: Float32Array | BigInt64Array }> }>): void {
  const file = new h5wasm.File(path, 'w');
  file.create_attribute('layer_names', layers.map((l) => l.name));
  file.create_attribute('backend', 'tensorflow');
  file.create_attribute('keras_version', '2.4.0');
  for (const layer of layers) {
    const group = file.create_group(layer.name);
    if (layer.weights.length > 0) group.create_attribute('weight_names', layer.weights.map((w) => `${layer.name}/${w.name}:0`));
    const inner = layer.weights.length > 0 ? group.create_group(layer.name) : group;
    for (const w of layer.weights) {
      const int64 = w.values instanceof BigInt64Array;
      inner.create_dataset({ name: `${w.name}:0`, data: w.values, shape: w.shape, dtype: int64 ? '<q' : '<f' });
    }
  }
  file.close();
}

test('random values written in Keras\'s layout (count as int64) load back exactly into EfficientNet-B0', async () => {
  const model = buildEfficientNetB0({ seed: 3 });
  try {
    let seed = 1;
    const expected = new Map<string, Float32Array>();
    const layers = model.layers.map((layer) => ({
      name: layer.name,
      weights: layer.weights.map((w) => {
        const name = (w.originalName ?? w.name).split('/').pop()!;
        const size = w.shape.reduce((a: number, b) => a * (b as number), 1);
        const values = randomArray(size, seed++, -2, 2);
        if (name === 'count') {
          expected.set(`${layer.name}/${name}`, Float32Array.of(1_281_167));
          return { name, shape: [], values: BigInt64Array.of(1_281_167n) };
        }
        expected.set(`${layer.name}/${name}`, values);
        return { name, shape: w.shape as number[], values };
      }),
    }));
    const path = join(dir, 'keras-layout.h5');
    writeKerasLayout(path, layers);
    const result = await loadKerasH5Weights(model, path);
    assert.equal(result.values, 4_049_571);
    assert.equal(result.kerasVersion, '2.4.0');
    let compared = 0;
    for (const layer of model.layers) {
      for (const w of layer.weights) {
        const key = `${layer.name}/${(w.originalName ?? w.name).split('/').pop()}`;
        const actual = w.read().dataSync();
        assert.deepEqual(Array.from(actual), Array.from(expected.get(key)!), key);
        compared += actual.length;
      }
    }
    assert.equal(compared, 4_049_571);
  } finally {
    model.dispose();
  }
});

test('saveKerasH5Weights writes a file that loads back bit for bit into a fresh model', async () => {
  const a = buildEfficientNetB0({ seed: 5, includeTop: true });
  const b = buildEfficientNetB0({ seed: 6, includeTop: true });
  try {
    const path = join(dir, 'saved.h5');
    await saveKerasH5Weights(a, path);
    const read = await readKerasH5Weights(path);
    assert.equal(read.layers.length, 240);
    assert.deepEqual(read.layers[4]!.weights.map((w) => w.name), ['stem_conv/kernel:0']);
    await loadKerasH5Weights(b, path);
    const wa = a.getWeights();
    const wb = b.getWeights();
    for (let i = 0; i < wa.length; i++) assert.deepEqual(wb[i]!.dataSync(), wa[i]!.dataSync());
  } finally {
    a.dispose();
    b.dispose();
  }
});

test('a name or shape mismatch is one error listing what differs, and nothing is assigned', async () => {
  const model = buildEfficientNetB0({ seed: 7 });
  try {
    const path = join(dir, 'wrong.h5');
    const layers = model.layers.map((layer) => ({
      name: layer.name === 'top_bn' ? 'top_batchnorm' : layer.name,
      weights: layer.weights.map((w) => {
        const name = (w.originalName ?? w.name).split('/').pop()!;
        const shape = layer.name === 'stem_conv' ? [3, 3, 3, 16] : (w.shape as number[]);
        return { name: layer.name === 'block1a_bn' && name === 'beta' ? 'offset' : name, shape, values: new Float32Array(shape.reduce((a, b) => a * b, 1)) };
      }),
    }));
    writeKerasLayout(path, layers);
    const before = model.getLayer('stem_bn').getWeights()[0]!.dataSync().slice();
    await assert.rejects(loadKerasH5Weights(model, path), (error: Error) => {
      assert.ok(error instanceof KerasH5Error);
      assert.match(error.message, /5 differences/);
      assert.match(error.message, /layer 'stem_conv': weight 'kernel' has shape \[3, 3, 3, 16\] in the file, \[3, 3, 3, 32\] in the model/);
      assert.match(error.message, /layer 'top_bn' \(BatchNormalization, 4 weights\) is not in the file/);
      assert.match(error.message, /layer 'block1a_bn': weight 'beta' \[32\] is not in the file \(it has gamma, offset, moving_mean, moving_variance\)/);
      assert.match(error.message, /layer 'block1a_bn': the file has weight 'offset' \[32\], which the model's layer lacks/);
      assert.match(error.message, /the file has layer 'top_batchnorm'/);
      return true;
    });
    assert.deepEqual(model.getLayer('stem_bn').getWeights()[0]!.dataSync(), before);
  } finally {
    model.dispose();
  }
});

test('missing and non-HDF5 files are clear errors', async () => {
  await assert.rejects(readKerasH5Weights(join(dir, 'nope.h5')), /nope\.h5 does not exist/);
  const junk = join(dir, 'junk.h5');
  writeFileSync(junk, 'not hdf5 at all');
  await assert.rejects(readKerasH5Weights(junk), /is not a readable HDF5 file/);
  const model = buildEfficientNetB0();
  await assert.rejects(loadKerasH5Weights(model, junk, { strict: true } as never), /unknown option 'strict'; valid options: allowUnusedLayers/);
  model.dispose();
  assert.equal(tf.memory().numTensors >= 0, true);
});
