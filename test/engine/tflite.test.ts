import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dequantizeTensor } from '../../src/engine/tflite/dequantize.ts';
import { importTflite, UnsupportedOperatorError } from '../../src/engine/tflite/import.ts';
import { readTfliteModel, TensorType, type TfliteTensor } from '../../src/engine/tflite/schema.ts';
import { buildTfliteFixture, bytesOf, conv2dOptions } from './tflite-fixture.ts';

const CONV_2D = 3;
const MUL = 18;

function tensor(partial: Partial<TfliteTensor> & Pick<TfliteTensor, 'shape' | 'type'>): TfliteTensor {
  return { index: 0, name: 'w', buffer: 1, quantization: undefined, ...partial };
}

test('dequantize: per-tensor uint8, real = scale * (q - zero_point)', () => {
  const t = tensor({ shape: [4], type: TensorType.UINT8, quantization: { scale: Float32Array.of(0.5), zeroPoint: [128], quantizedDimension: 0 } });
  assert.deepEqual([...dequantizeTensor(t, Uint8Array.of(128, 130, 0, 255))], [0, 1, -64, 63.5]);
});

test('dequantize: per-channel int8 along dimension 0 and along the last dimension', () => {
  const scale = Float32Array.of(0.5, 2);
  // Shape [2, 3], channels on dimension 0: rows use scales 0.5 and 2, zero points 1 and -1.
  const rows = tensor({ shape: [2, 3], type: TensorType.INT8, quantization: { scale, zeroPoint: [1, -1], quantizedDimension: 0 } });
  assert.deepEqual([...dequantizeTensor(rows, bytesOf([1, 3, -1, -1, 0, 2], 'int8'))], [0, 1, -1, 0, 2, 6]);
  // Shape [3, 2], channels on dimension 1 (like a depthwise kernel's last axis): columns alternate scales.
  const cols = tensor({ shape: [3, 2], type: TensorType.INT8, quantization: { scale, zeroPoint: [0, 0], quantizedDimension: 1 } });
  assert.deepEqual([...dequantizeTensor(cols, bytesOf([2, 1, -4, 3, 0, -2], 'int8'))], [1, 2, -2, 6, 0, -4]);
});

test('dequantize: int32 bias with scale = input_scale * weight_scale, and a mismatched scale count is an error', () => {
  const bias = tensor({ shape: [2], type: TensorType.INT32, quantization: { scale: Float32Array.of(0.25), zeroPoint: [0], quantizedDimension: 0 } });
  assert.deepEqual([...dequantizeTensor(bias, bytesOf([4, -8], 'int32'))], [1, -2]);
  const bad = tensor({ shape: [3], type: TensorType.UINT8, quantization: { scale: Float32Array.of(1, 2), zeroPoint: [0, 0], quantizedDimension: 0 } });
  assert.throws(() => dequantizeTensor(bad, Uint8Array.of(1, 2, 3)), /2 scales for dimension 0 of size 3/);
});

/** input [1,4,4,2] uint8 -> CONV_2D 1x1, 3 filters, per-channel uint8 weights, RELU6. */
function convFixture(extra: { unsupported?: boolean } = {}): Uint8Array {
  const weights = [130, 126, 128, 132, 120, 128]; // [3, 1, 1, 2]
  return buildTfliteFixture({
    tensors: [
      { name: 'input', shape: [1, 4, 4, 2], type: TensorType.UINT8, quantization: { scale: [1 / 128], zeroPoint: [128] } },
      { name: 'net/conv/weights', shape: [3, 1, 1, 2], type: TensorType.UINT8, data: bytesOf(weights, 'uint8'), quantization: { scale: [0.5, 0.25, 1], zeroPoint: [128, 128, 128], quantizedDimension: 0 } },
      { name: 'net/conv/bias', shape: [3], type: TensorType.INT32, data: bytesOf([1, 2, 3], 'int32'), quantization: { scale: [0.5], zeroPoint: [0] } },
      { name: 'net/conv/Relu6', shape: [1, 4, 4, 3], type: TensorType.UINT8, quantization: { scale: [6 / 255], zeroPoint: [0] } },
      { name: 'net/mul', shape: [1, 4, 4, 3], type: TensorType.UINT8, quantization: { scale: [6 / 255], zeroPoint: [0] } },
    ],
    inputs: [0],
    outputs: [extra.unsupported ? 4 : 3],
    operators: [
      { builtinCode: CONV_2D, inputs: [0, 1, 2], outputs: [3], optionsType: 1, options: conv2dOptions(0, 1, 3) },
      ...(extra.unsupported ? [{ builtinCode: MUL, inputs: [3, 3], outputs: [4] }] : []),
    ],
  });
}

test('tflite reader and importer: a hand-made per-channel conv model becomes preprocess + conv2d with float weights', () => {
  const bytes = convFixture();
  const model = readTfliteModel(bytes);
  assert.equal(model.subgraphs[0]!.operators[0]!.builtinCode, CONV_2D);
  const graph = importTflite(bytes);
  assert.deepEqual(graph.ops.map((op) => op.kind), ['affine', 'conv2d']);
  const preprocess = graph.ops[0]!;
  assert.ok(preprocess.kind === 'affine' && preprocess.scale === 1 / 128 && preprocess.offset === -1);
  const conv = graph.ops[1]!;
  assert.ok(conv.kind === 'conv2d');
  assert.deepEqual(conv.kernelShape, [1, 1, 2, 3]);
  // HWIO: kernel[i][o] = scale_o * (q[o][i] - 128)
  assert.deepEqual([...conv.kernel], [1, 0, -8, -1, 1, 0]);
  assert.deepEqual([...conv.bias!], [0.5, 1, 1.5]);
  assert.equal(conv.activation, 'relu6');
  assert.equal(conv.padding, 'same');
});

test('tflite importer: an unsupported operator is an error naming it', () => {
  assert.throws(() => importTflite(convFixture({ unsupported: true }), { source: 'tiny.tflite' }), (error: unknown) => {
    assert.ok(error instanceof UnsupportedOperatorError);
    assert.match(error.message, /unsupported TFLite operator MUL/);
    assert.match(error.message, /tiny\.tflite/);
    return true;
  });
});

test('tflite reader: a file that is not TFLite is refused', () => {
  assert.throws(() => readTfliteModel(new Uint8Array(16)), /not a TFLite file/);
});
