// Each training kernel on wasm against tfjs-backend-cpu on random inputs.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import type { NamedAttrMap, DataType } from '@tensorflow/tfjs-core';
import { initWasmBackend, registerTrainingKernels } from '../../src/engine/kernels/index.ts';
import { setColumnBudgetForTesting } from '../../src/engine/kernels/conv-backprop.ts';
import { Rng } from '../../src/data/random.ts';

type Input = { shape: number[]; values: Float32Array | Int32Array | Uint8Array; dtype: DataType };

const rng = new Rng(12345);
const random = (): number => rng.next();
function randomInput(shape: number[]): Input {
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < values.length; i++) values[i] = random() * 2 - 1;
  return { shape, values, dtype: 'float32' };
}

async function runOn(backend: string, kernel: string, inputs: Record<string, Input>, attrs: NamedAttrMap): Promise<{ shape: number[]; values: Float32Array }> {
  await tf.setBackend(backend);
  const tensors: Record<string, tf.Tensor> = {};
  for (const [name, input] of Object.entries(inputs)) tensors[name] = tf.tensor(input.values, input.shape, input.dtype);
  const out = tf.engine().runKernel(kernel, tensors, attrs) as tf.Tensor;
  const values = Float32Array.from(await out.data() as ArrayLike<number>);
  const shape = out.shape;
  tf.dispose([out, ...Object.values(tensors)]);
  return { shape, values };
}

/** Max absolute difference over the largest reference magnitude: robust to reference values near zero. */
async function assertMatchesCpu(kernel: string, inputs: Record<string, Input>, attrs: NamedAttrMap, label: string): Promise<void> {
  const expected = await runOn('cpu', kernel, inputs, attrs);
  const before = tf.engine().backend.numDataIds();
  const actual = await runOn('wasm', kernel, inputs, attrs);
  assert.deepEqual(actual.shape, expected.shape, `${label}: shape`);
  let maxDiff = 0;
  let maxRef = 1e-12;
  for (let i = 0; i < expected.values.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(actual.values[i]! - expected.values[i]!));
    maxRef = Math.max(maxRef, Math.abs(expected.values[i]!));
  }
  assert.ok(maxDiff / maxRef <= 1e-4, `${label}: relative error ${maxDiff / maxRef}`);
  assert.equal(tf.engine().backend.numDataIds(), before, `${label}: leaked wasm tensors`);
}

function outSize(size: number, filter: number, stride: number, pad: 'same' | 'valid'): number {
  return pad === 'same' ? Math.ceil(size / stride) : Math.floor((size - filter) / stride) + 1;
}

type ConvCase = { batch: number; height: number; width: number; inChannels: number; filter: [number, number]; stride: number; pad: 'same' | 'valid' };
const convCases: ConvCase[] = [];
for (const stride of [1, 2]) {
  for (const pad of ['same', 'valid'] as const) {
    convCases.push({ batch: 2, height: 7, width: 9, inChannels: 3, filter: [3, 3], stride, pad });
    convCases.push({ batch: 3, height: 5, width: 5, inChannels: 4, filter: [1, 1], stride, pad });
    convCases.push({ batch: 1, height: 8, width: 6, inChannels: 5, filter: [2, 3], stride, pad });
  }
}

before(async () => {
  registerTrainingKernels();
  await initWasmBackend();
  registerTrainingKernels();
});

test('Conv2DBackpropFilter and Conv2DBackpropInput match the cpu backend', async () => {
  for (const c of convCases) {
    for (const outChannels of [5, 1]) {
      const label = `conv ${JSON.stringify(c)} out ${outChannels}`;
      const outHeight = outSize(c.height, c.filter[0], c.stride, c.pad);
      const outWidth = outSize(c.width, c.filter[1], c.stride, c.pad);
      const inputShape = [c.batch, c.height, c.width, c.inChannels];
      const filterShape = [c.filter[0], c.filter[1], c.inChannels, outChannels];
      const dy = randomInput([c.batch, outHeight, outWidth, outChannels]);
      const common = { strides: [c.stride, c.stride], pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined } as unknown as NamedAttrMap;
      await assertMatchesCpu(tf.Conv2DBackpropFilter, { x: randomInput(inputShape), dy }, { ...common, filterShape }, `${label} filter`);
      await assertMatchesCpu(tf.Conv2DBackpropInput, { dy, filter: randomInput(filterShape) }, { ...common, inputShape }, `${label} input`);
    }
  }
});

test('Conv2DBackpropFilter splits large im2col buffers over the batch', async () => {
  setColumnBudgetForTesting(200);
  try {
    const attrs = { strides: [2, 2], pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 2, 4] } as unknown as NamedAttrMap;
    await assertMatchesCpu(tf.Conv2DBackpropFilter, { x: randomInput([5, 7, 7, 2]), dy: randomInput([5, 4, 4, 4]) }, attrs, 'chunked');
  } finally {
    setColumnBudgetForTesting(1 << 24);
  }
});

test('Conv2DBackpropInput supports explicit padding', async () => {
  const attrs = { strides: [2, 2], pad: [[0, 0], [1, 2], [0, 1], [0, 0]], dataFormat: 'NHWC', inputShape: [2, 7, 6, 3] } as unknown as NamedAttrMap;
  // out = floor((7 + 3 - 3) / 2) + 1 = 4, floor((6 + 1 - 3) / 2) + 1 = 3
  await assertMatchesCpu(tf.Conv2DBackpropInput, { dy: randomInput([2, 4, 3, 4]), filter: randomInput([3, 3, 3, 4]) }, attrs, 'explicit pad');
});

test('depthwise backprops match the cpu backend', async () => {
  for (const c of convCases) {
    for (const multiplier of [1, 2]) {
      const label = `depthwise ${JSON.stringify(c)} x${multiplier}`;
      const outHeight = outSize(c.height, c.filter[0], c.stride, c.pad);
      const outWidth = outSize(c.width, c.filter[1], c.stride, c.pad);
      const inputShape = [c.batch, c.height, c.width, c.inChannels];
      const filterShape = [c.filter[0], c.filter[1], c.inChannels, multiplier];
      const dy = randomInput([c.batch, outHeight, outWidth, c.inChannels * multiplier]);
      const common = { strides: [c.stride, c.stride], pad: c.pad, dilations: [1, 1], dimRoundingMode: undefined } as unknown as NamedAttrMap;
      await assertMatchesCpu(tf.DepthwiseConv2dNativeBackpropFilter, { x: randomInput(inputShape), dy }, { ...common, filterShape }, `${label} filter`);
      await assertMatchesCpu(tf.DepthwiseConv2dNativeBackpropInput, { dy, filter: randomInput(filterShape) }, { ...common, inputShape }, `${label} input`);
    }
  }
});

test('BatchMatMul and _FusedMatMul with transposed operands match the cpu backend', async () => {
  for (const transposeA of [false, true]) {
    for (const transposeB of [false, true]) {
      const a = randomInput(transposeA ? [3, 7, 5] : [3, 5, 7]);
      const b = randomInput(transposeB ? [3, 9, 7] : [3, 7, 9]);
      const label = `matmul tA=${transposeA} tB=${transposeB}`;
      await assertMatchesCpu(tf.BatchMatMul, { a, b }, { transposeA, transposeB }, label);
      const broadcastB = randomInput(transposeB ? [1, 9, 7] : [1, 7, 9]);
      await assertMatchesCpu(tf.BatchMatMul, { a, b: broadcastB }, { transposeA, transposeB }, `${label} broadcast`);
      // Batch 1 only: the wasm _FusedMatMul itself disagrees with cpu for batch > 1 (upstream, untransposed too).
      const a2 = randomInput(transposeA ? [1, 7, 5] : [1, 5, 7]);
      const b2 = randomInput(transposeB ? [1, 9, 7] : [1, 7, 9]);
      await assertMatchesCpu(tf._FusedMatMul, { a: a2, b: b2, bias: randomInput([9]) }, { transposeA, transposeB, activation: 'relu' }, `fused ${label}`);
    }
  }
});

test('Tile matches the cpu backend', async () => {
  const cases: [number[], number[]][] = [
    [[5], [3]], [[2, 3], [1, 4]], [[2, 3], [3, 1]], [[1, 1, 1, 7], [2, 3, 5, 1]], [[3, 1, 2, 2], [2, 5, 1, 3]], [[2, 3], [1, 1]],
  ];
  for (const [shape, reps] of cases) {
    await assertMatchesCpu(tf.Tile, { x: randomInput(shape) }, { reps }, `tile ${shape} by ${reps}`);
    const ints = Int32Array.from(randomInput(shape).values, (v) => Math.round(v * 100));
    await assertMatchesCpu(tf.Tile, { x: { shape, values: ints, dtype: 'int32' } }, { reps }, `int tile ${shape} by ${reps}`);
    const bools = Uint8Array.from(randomInput(shape).values, (v) => (v > 0 ? 1 : 0));
    await assertMatchesCpu(tf.Tile, { x: { shape, values: bools, dtype: 'bool' } }, { reps }, `bool tile ${shape} by ${reps}`);
  }
});

test('registerTrainingKernels is idempotent', () => {
  const before = tf.getKernel(tf.BatchMatMul, 'wasm');
  registerTrainingKernels();
  assert.equal(tf.getKernel(tf.BatchMatMul, 'wasm'), before);
});
