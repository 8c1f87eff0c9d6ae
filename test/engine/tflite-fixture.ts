// Builds tiny .tflite flatbuffers by hand (flatbuffers Builder, field numbers from schema.fbs) for importer tests.
import { Builder } from 'flatbuffers';
import type { TensorType } from '../../src/engine/tflite/schema.ts';

export interface FixtureTensor {
  name: string;
  shape: number[];
  type: TensorType;
  /** Constant data (little-endian bytes), or undefined for an activation. */
  data?: Uint8Array;
  quantization?: { scale: number[]; zeroPoint: number[]; quantizedDimension?: number };
}

export interface FixtureOperator {
  builtinCode: number;
  inputs: number[];
  outputs: number[];
  /** BuiltinOptions union type and a writer for its table (called before the operator table starts). */
  optionsType?: number;
  options?: (builder: Builder) => number;
}

export interface FixtureModel {
  tensors: FixtureTensor[];
  inputs: number[];
  outputs: number[];
  operators: FixtureOperator[];
}

function int32Vector(b: Builder, values: number[]): number {
  b.startVector(4, values.length, 4);
  for (let i = values.length - 1; i >= 0; i--) b.addInt32(values[i]!);
  return b.endVector();
}

/** Conv2DOptions table: padding SAME=0/VALID=1, strides, fused activation (0 none, 1 relu, 3 relu6). */
export function conv2dOptions(padding: 0 | 1, stride: number, activation: number): (b: Builder) => number {
  return (b) => {
    b.startObject(6);
    b.addFieldInt8(0, padding, 0);
    b.addFieldInt32(1, stride, 0);
    b.addFieldInt32(2, stride, 0);
    b.addFieldInt8(3, activation, 0);
    return b.endObject();
  };
}

export function buildTfliteFixture(model: FixtureModel): Uint8Array {
  const b = new Builder(1024);
  // Buffer 0 is the conventional empty buffer; constant tensors get their own.
  const bufferData: Array<Uint8Array | undefined> = [undefined];
  const tensorBuffer = model.tensors.map((t) => {
    if (!t.data) return 0;
    bufferData.push(t.data);
    return bufferData.length - 1;
  });
  const buffers = bufferData.map((data) => {
    const vector = data ? b.createByteVector(data) : 0;
    b.startObject(1);
    if (data) b.addFieldOffset(0, vector, 0);
    return b.endObject();
  });
  const tensors = model.tensors.map((t, i) => {
    const name = b.createString(t.name);
    const shape = int32Vector(b, t.shape);
    let quantization = 0;
    if (t.quantization) {
      const scale = (() => {
        b.startVector(4, t.quantization.scale.length, 4);
        for (let k = t.quantization.scale.length - 1; k >= 0; k--) b.addFloat32(t.quantization.scale[k]!);
        return b.endVector();
      })();
      const zeroPoint = (() => {
        b.startVector(8, t.quantization.zeroPoint.length, 8);
        for (let k = t.quantization.zeroPoint.length - 1; k >= 0; k--) b.addInt64(BigInt(t.quantization.zeroPoint[k]!));
        return b.endVector();
      })();
      b.startObject(7);
      b.addFieldOffset(2, scale, 0);
      b.addFieldOffset(3, zeroPoint, 0);
      b.addFieldInt32(6, t.quantization.quantizedDimension ?? 0, 0);
      quantization = b.endObject();
    }
    b.startObject(5);
    b.addFieldOffset(0, shape, 0);
    b.addFieldInt8(1, t.type, 0);
    b.addFieldInt32(2, tensorBuffer[i]!, 0);
    b.addFieldOffset(3, name, 0);
    if (quantization) b.addFieldOffset(4, quantization, 0);
    return b.endObject();
  });
  const codes = [...new Set(model.operators.map((op) => op.builtinCode))];
  const operatorCodes = codes.map((code) => {
    b.startObject(4);
    b.addFieldInt8(0, Math.min(code, 127), 0);
    b.addFieldInt32(3, code, 0);
    return b.endObject();
  });
  const operators = model.operators.map((op) => {
    const inputs = int32Vector(b, op.inputs);
    const outputs = int32Vector(b, op.outputs);
    const options = op.options ? op.options(b) : 0;
    b.startObject(5);
    b.addFieldInt32(0, codes.indexOf(op.builtinCode), 0);
    b.addFieldOffset(1, inputs, 0);
    b.addFieldOffset(2, outputs, 0);
    if (op.optionsType !== undefined) b.addFieldInt8(3, op.optionsType, 0);
    if (options) b.addFieldOffset(4, options, 0);
    return b.endObject();
  });
  const offsetVector = (offsets: number[]): number => {
    b.startVector(4, offsets.length, 4);
    for (let i = offsets.length - 1; i >= 0; i--) b.addOffset(offsets[i]!);
    return b.endVector();
  };
  const tensorVector = offsetVector(tensors);
  const inputs = int32Vector(b, model.inputs);
  const outputs = int32Vector(b, model.outputs);
  const operatorVector = offsetVector(operators);
  b.startObject(5);
  b.addFieldOffset(0, tensorVector, 0);
  b.addFieldOffset(1, inputs, 0);
  b.addFieldOffset(2, outputs, 0);
  b.addFieldOffset(3, operatorVector, 0);
  const subgraph = b.endObject();
  const codeVector = offsetVector(operatorCodes);
  const subgraphVector = offsetVector([subgraph]);
  const bufferVector = offsetVector(buffers);
  b.startObject(5);
  b.addFieldInt32(0, 3, 0);
  b.addFieldOffset(1, codeVector, 0);
  b.addFieldOffset(2, subgraphVector, 0);
  b.addFieldOffset(4, bufferVector, 0);
  b.finish(b.endObject(), 'TFL3');
  return b.asUint8Array();
}

export function bytesOf(values: ArrayLike<number>, type: 'uint8' | 'int8' | 'int32' | 'float32'): Uint8Array {
  const array =
    type === 'uint8' ? Uint8Array.from(values) : type === 'int8' ? Int8Array.from(values) : type === 'int32' ? Int32Array.from(values) : Float32Array.from(values);
  return new Uint8Array(array.buffer.slice(0)); // little-endian on every platform Node runs on here
}
