// The portable wasm engine: tfjs-wasm worker_threads agree with ONNX Runtime, keep input order, survive a crash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { loadBackbone } from '../../src/engine/backbone.ts';
import type { Graph } from '../../src/engine/ir.ts';
import { exportOnnx } from '../../src/engine/onnx/export.ts';
import { WasmForwardPool } from '../../src/engine/wasm/pool.ts';
import { randomArray, relativeError } from './helpers.ts';

test('wasm engine: 2 workers give the ONNX Runtime trunk activations of mobilenet-v1 in input order', async () => {
  const onnx = await loadBackbone('mobilenet-v1', { cut: 'block_6' });
  const wasm = await loadBackbone('mobilenet-v1', { cut: 'block_6', engine: 'wasm', workers: 2 });
  try {
    const n = 3; // uneven split across the workers
    const pixels = randomArray(n * 224 * 224 * 3, 3, 0, 255);
    const expected = await onnx.forward(pixels, n);
    const actual = await wasm.forward(pixels, n);
    assert.ok(relativeError(actual, expected) < 1e-4, String(relativeError(actual, expected)));
  } finally {
    await onnx.dispose();
    await wasm.dispose();
  }
  await assert.rejects(loadBackbone('mobilenet-v1', { engine: 'gpu' as never }), /engine must be one of onnx, wasm/);
});

test('wasm engine: a crashed worker is replaced and its chunk retried once', async () => {
  const graph: Graph = {
    input: 'input',
    inputShape: [6, 6, 2],
    output: 'conv',
    ops: [
      { kind: 'conv2d', name: 'conv', inputs: ['input'], kernel: randomArray(3 * 3 * 2 * 4, 9, -1, 1), kernelShape: [3, 3, 2, 4], bias: null, strides: [1, 1], dilations: [1, 1], padding: 'same', activation: 'relu6' },
    ],
  };
  const pixels = randomArray(4 * 6 * 6 * 2, 4, -1, 1);
  const session = await ort.InferenceSession.create(exportOnnx(graph));
  const expected = (await session.run({ input: new ort.Tensor('float32', pixels, [4, 6, 6, 2]) })).output!.data as Float32Array;
  await session.release();
  const crashing = await WasmForwardPool.create(graph, { workers: 2, crashOnChunk: 1 });
  try {
    const actual = await crashing.forward(pixels, 4);
    assert.ok(relativeError(actual, expected) < 1e-5, String(relativeError(actual, expected)));
    assert.equal(crashing.restarts, 1);
  } finally {
    await crashing.dispose();
  }
});
