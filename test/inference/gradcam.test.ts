// Grad-CAM on a hand-built tail where the answer is known: conv (identity) -> global average pool -> dense.
// logit = sum_c v_c mean(A_c), so dlogit/dA_c = v_c / (h w) everywhere and cam = relu(sum_c v_c A_c) / (h w).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import sharp from 'sharp';
import { initWasmBackend } from '../../src/engine/kernels/index.ts';
import { gradCam, heatmapOverlay, jet, lastConvLayer, upsample } from '../../src/inference/gradcam.ts';

const SIDE = 4;

function handBuiltTail(dense: [number, number]): tfl.LayersModel {
  const input = tfl.input({ shape: [SIDE, SIDE, 2], name: 'trunk_out' });
  const conv = tfl.layers.conv2d({ filters: 2, kernelSize: 1, name: 'last_conv', useBias: true });
  const pooled = tfl.layers.globalAveragePooling2d({ name: 'pool' }).apply(conv.apply(input)) as tfl.SymbolicTensor;
  const head = tfl.layers.dense({ units: 1, name: 'logit' });
  const model = tfl.model({ inputs: input, outputs: head.apply(pooled) as tfl.SymbolicTensor });
  conv.setWeights([tf.tensor4d([1, 0, 0, 1], [1, 1, 2, 2]), tf.zeros([2])]);
  head.setWeights([tf.tensor2d(dense, [2, 1]), tf.zeros([1])]);
  return model;
}

/** Channel 0: 1 everywhere but `hot` at (row, col); channel 1: large values that the head ignores. */
function activation(row: number, col: number, hot = 5): Float32Array {
  const values = new Float32Array(SIDE * SIDE * 2);
  for (let i = 0; i < SIDE * SIDE; i++) {
    values[2 * i] = i === row * SIDE + col ? hot : 1;
    values[2 * i + 1] = 10 + i;
  }
  return values;
}

function argmax(values: Float32Array): number {
  let best = 0;
  values.forEach((v, i) => {
    if (v > values[best]!) best = i;
  });
  return best;
}

test('Grad-CAM of a known model: the map is the evidence channel, scaled to [0, 1]; the logit is exact', async () => {
  await initWasmBackend();
  const tail = handBuiltTail([1, 0]);
  assert.equal(lastConvLayer(tail), 'last_conv');
  const before = tf.memory().numTensors;
  const cam = gradCam(tail, activation(1, 2), [SIDE, SIDE, 2]);
  assert.equal(tf.memory().numTensors, before, 'no tensor leaked');
  assert.deepEqual([cam.width, cam.height, cam.layer], [SIDE, SIDE, 'last_conv']);
  assert.ok(Math.abs(cam.logit - (15 + 5) / 16) < 1e-5, `logit ${cam.logit}`);
  assert.ok(Math.abs(cam.peak - 5 / 16) < 1e-5, `peak ${cam.peak}`);
  cam.map.forEach((v, i) => assert.ok(Math.abs(v - (i === 1 * SIDE + 2 ? 1 : 0.2)) < 1e-5, `map[${i}] = ${v}`));

  const moved = gradCam(tail, activation(3, 0), [SIDE, SIDE, 2]);
  assert.equal(argmax(moved.map), 3 * SIDE + 0, 'the map follows the region that drives the logit');
  assert.deepEqual(gradCam(tail, activation(3, 0), [SIDE, SIDE, 2]).map, moved.map, 'deterministic');
  tail.dispose();
});

test('Grad-CAM: evidence against COVID gives an empty map, not a negative one; bad layer names are errors', async () => {
  await initWasmBackend();
  const tail = handBuiltTail([-1, 0]);
  const cam = gradCam(tail, activation(1, 1), [SIDE, SIDE, 2]);
  assert.equal(cam.peak, 0);
  assert.ok(cam.map.every((v) => v === 0));
  assert.throws(() => gradCam(tail, activation(1, 1), [SIDE, SIDE, 2], 'nope'), /layer 'nope' is not in the tail; layers: last_conv, pool, logit/);
  assert.throws(() => gradCam(tail, new Float32Array(3), [SIDE, SIDE, 2]), /input has 3 values/);
  tail.dispose();
});

test('upsampling keeps corners and constants; jet runs blue to red; the overlay is a PNG of the image size', async () => {
  const flat = upsample(new Float32Array(4).fill(0.25), 2, 2, 5, 3);
  assert.ok(flat.every((v) => Math.abs(v - 0.25) < 1e-6));
  const ramp = upsample(Float32Array.from([0, 1, 0, 1]), 2, 2, 8, 8);
  assert.equal(ramp[0], 0);
  assert.equal(ramp[7], 1);
  assert.ok(ramp[3]! > ramp[2]! && ramp[4]! > ramp[3]!, 'monotone between the samples');
  assert.deepEqual(jet(0), [0, 0, 128]);
  assert.deepEqual(jet(1), [128, 0, 0]);

  const image = { data: new Uint8Array(32 * 24 * 3).fill(100), width: 32, height: 24 };
  const map = Float32Array.from([0, 0, 0, 1]);
  const png = await heatmapOverlay(image, { map, width: 2, height: 2 }, 0.5);
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([info.width, info.height, info.format], [32, 24, 'raw']);
  assert.deepEqual([...data.subarray(0, 3)], [100, 100, 100], 'no evidence: the image unchanged');
  const last = (32 * 24 - 1) * 3;
  assert.deepEqual([...data.subarray(last, last + 3)], [114, 50, 50], 'hottest corner: half image, half red');
});
