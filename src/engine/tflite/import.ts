/**
 * TFLite -> engine IR. Maps the MobileNet-family operators to IR layers with float32 weights (dequantized),
 * names layers after their MobileNet scope (block_3_depthwise, block_16_project, conv_1x1, ...), and folds
 * the uint8 input quantization into a leading 'preprocess' layer so the float graph takes raw 0-255 pixels.
 */
import { readFileSync } from 'node:fs';
import type { Activation, Graph, Op, Padding } from '../ir.ts';
import { inferShapes } from '../ir.ts';
import { dequantizeTensor } from './dequantize.ts';
import { builtinOperatorName, readTfliteModel, TensorType, type Table, type TfliteOperator, type TfliteTensor } from './schema.ts';

export class UnsupportedOperatorError extends Error {
  override name = 'UnsupportedOperatorError';
}

export const SUPPORTED_OPERATORS = [
  'CONV_2D',
  'DEPTHWISE_CONV_2D',
  'ADD',
  'AVERAGE_POOL_2D',
  'MEAN',
  'RESHAPE',
  'SQUEEZE',
  'FULLY_CONNECTED',
  'SOFTMAX',
] as const;

const ACTIVATIONS: Record<number, Activation | undefined> = { 0: 'linear', 1: 'relu', 3: 'relu6' };
const ACTIVATION_NAMES = ['NONE', 'RELU', 'RELU_N1_TO_1', 'RELU6', 'TANH', 'SIGN_BIT'];

/** A readable layer name from the TF scope in the tensor name, when it is a MobileNet scope. */
export function mobilenetLayerName(tensorName: string): string | undefined {
  const scope = tensorName.split(';')[0]!;
  let m = /expanded_conv(?:_(\d+))?\/(expand|depthwise|project|add)\b/.exec(scope);
  if (m) return `block_${m[1] ?? 0}_${m[2]}`;
  m = /Conv2d_(\d+)_(depthwise|pointwise)\//.exec(scope);
  if (m) return `block_${m[1]}_${m[2]}`;
  if (/MobilenetV2\/Conv\/|Conv2d_0\//.test(scope)) return 'conv_stem';
  if (/MobilenetV2\/Conv_1\//.test(scope)) return 'conv_1x1';
  if (/AvgPool/.test(scope)) return 'global_pool';
  if (/Logits\/Conv2d_1c_1x1\//.test(scope)) return 'logits';
  if (/Squeeze/.test(scope)) return 'logits_flat';
  if (/Predictions\/Softmax/.test(scope)) return 'predictions';
  return undefined;
}

function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c]!;
  return out;
}

export interface ImportOptions {
  /** Used in error messages. */
  source?: string;
}

/** Imports the first subgraph of a TFLite model as an IR graph. */
export function importTflite(bytes: Uint8Array, options: ImportOptions = {}): Graph {
  const source = options.source ?? 'TFLite model';
  const model = readTfliteModel(bytes);
  const subgraph = model.subgraphs[0];
  if (!subgraph) throw new UnsupportedOperatorError(`${source}: no subgraph`);
  if (subgraph.inputs.length !== 1 || subgraph.outputs.length !== 1) {
    throw new UnsupportedOperatorError(`${source}: expected one input and one output, got ${subgraph.inputs.length} and ${subgraph.outputs.length}`);
  }
  const tensors = subgraph.tensors;
  const tensorAt = (index: number | undefined): TfliteTensor => {
    const tensor = index === undefined ? undefined : tensors[index];
    if (!tensor) throw new UnsupportedOperatorError(`${source}: missing tensor ${index}`);
    return tensor;
  };
  const constant = (index: number | undefined): Float32Array | null => {
    if (index === undefined || index < 0) return null;
    const tensor = tensorAt(index);
    const data = model.buffers[tensor.buffer];
    if (!data || data.length === 0) throw new UnsupportedOperatorError(`${source}: tensor '${tensor.name}' should be constant`);
    return dequantizeTensor(tensor, data);
  };
  const constantInts = (index: number | undefined): number[] => {
    const tensor = tensorAt(index);
    const data = model.buffers[tensor.buffer];
    if (!data || tensor.type !== TensorType.INT32) throw new UnsupportedOperatorError(`${source}: tensor '${tensor.name}' should be a constant int32`);
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    return Array.from({ length: data.byteLength / 4 }, (_, i) => view.getInt32(4 * i, true));
  };

  const inputTensor = tensorAt(subgraph.inputs[0]);
  const [batch, ...inputShape] = inputTensor.shape;
  if (batch !== 1 || inputShape.length !== 3) {
    throw new UnsupportedOperatorError(`${source}: expected an NHWC input [1, H, W, C], got [${inputTensor.shape.join(', ')}]`);
  }
  const ops: Op[] = [];
  const names = new Map<number, string>([[inputTensor.index, 'input']]);
  const used = new Set<string>(['input']);
  const q = inputTensor.quantization;
  if (inputTensor.type !== TensorType.FLOAT32) {
    if (!q || q.scale.length !== 1) throw new UnsupportedOperatorError(`${source}: integer input without quantization`);
    const scale = q.scale[0]!;
    ops.push({ kind: 'affine', name: 'preprocess', inputs: ['input'], scale, offset: -scale * (q.zeroPoint[0] ?? 0) });
    names.set(inputTensor.index, 'preprocess');
    used.add('preprocess');
  }

  const unique = (base: string): string => {
    let name = base;
    for (let k = 1; used.has(name); k++) name = `${base}_${k}`;
    used.add(name);
    return name;
  };
  const nameOf = (index: number | undefined): string => {
    const name = index === undefined ? undefined : names.get(index);
    if (name === undefined) throw new UnsupportedOperatorError(`${source}: tensor ${index} is read before it is computed`);
    return name;
  };

  subgraph.operators.forEach((op: TfliteOperator, position: number) => {
    const opName = builtinOperatorName(op.builtinCode);
    const output = tensorAt(op.outputs[0]);
    const where = `operator #${position} ${opName} (output '${output.name.split(';')[0]}')`;
    if (!(SUPPORTED_OPERATORS as readonly string[]).includes(opName)) {
      const label = opName === 'CUSTOM' ? `CUSTOM '${op.customCode ?? '?'}'` : opName;
      throw new UnsupportedOperatorError(
        `${source}: unsupported TFLite operator ${label} at operator #${position}; supported: ${SUPPORTED_OPERATORS.join(', ')}`,
      );
    }
    const options: Table | undefined = op.options;
    const int = (field: number, fallback: number): number => options?.int32(field, fallback) ?? fallback;
    const byte = (field: number, fallback: number): number => options?.int8(field, fallback) ?? fallback;
    const activation = (field: number): Activation => {
      const code = byte(field, 0);
      const act = ACTIVATIONS[code];
      if (!act) throw new UnsupportedOperatorError(`${source}: ${where}: unsupported fused activation ${ACTIVATION_NAMES[code] ?? code}`);
      return act;
    };
    const padding = (): Padding => (byte(0, 0) === 0 ? 'same' : 'valid');
    const kindName = opName.toLowerCase();
    const name = unique(mobilenetLayerName(output.name) ?? `${kindName}_${position}`);
    const input = nameOf(op.inputs[0]);
    switch (opName) {
      case 'CONV_2D': {
        const weights = tensorAt(op.inputs[1]);
        const [o, kh, kw, i] = weights.shape as [number, number, number, number];
        const kernel = transpose2d(constant(op.inputs[1])!, o, kh * kw * i);
        ops.push({
          kind: 'conv2d', name, inputs: [input], kernel, kernelShape: [kh, kw, i, o], bias: constant(op.inputs[2]),
          strides: [int(2, 1), int(1, 1)], dilations: [int(5, 1), int(4, 1)], padding: padding(), activation: activation(3),
        });
        break;
      }
      case 'DEPTHWISE_CONV_2D': {
        const weights = tensorAt(op.inputs[1]);
        const [, kh, kw, outChannels] = weights.shape as [number, number, number, number];
        const inChannels = tensorAt(op.inputs[0]).shape[3]!;
        // [1, kh, kw, C*M] has the same memory order as tfjs's [kh, kw, C, M].
        ops.push({
          kind: 'depthwiseConv2d', name, inputs: [input], kernel: constant(op.inputs[1])!,
          kernelShape: [kh, kw, inChannels, outChannels / inChannels], bias: constant(op.inputs[2]),
          strides: [int(2, 1), int(1, 1)], dilations: [int(6, 1), int(5, 1)], padding: padding(), activation: activation(4),
        });
        break;
      }
      case 'ADD':
        ops.push({ kind: 'add', name, inputs: [input, nameOf(op.inputs[1])], activation: activation(0) });
        break;
      case 'AVERAGE_POOL_2D': {
        const act = activation(5);
        const poolName = act === 'linear' ? name : unique(`${name}_pool`);
        ops.push({
          kind: 'averagePool2d', name: poolName, inputs: [input], poolSize: [int(4, 1), int(3, 1)],
          strides: [int(2, 1), int(1, 1)], padding: padding(),
        });
        if (act !== 'linear') ops.push({ kind: 'activation', name, inputs: [poolName], activation: act });
        break;
      }
      case 'MEAN': {
        const axes = constantInts(op.inputs[1]).map((a) => (a < 0 ? a + 4 : a)).sort();
        if (axes.join() !== '1,2') throw new UnsupportedOperatorError(`${source}: ${where}: MEAN over axes [${axes}] (only [1, 2])`);
        ops.push({ kind: 'globalAveragePool', name, inputs: [input], keepDims: options?.bool(0) ?? false });
        break;
      }
      case 'RESHAPE':
      case 'SQUEEZE':
        ops.push({ kind: 'reshape', name, inputs: [input], targetShape: output.shape.slice(1) });
        break;
      case 'FULLY_CONNECTED': {
        const weights = tensorAt(op.inputs[1]);
        const [units, inUnits] = weights.shape as [number, number];
        let dense = input;
        if (tensorAt(op.inputs[0]).shape.length !== 2) {
          dense = unique(`${name}_flatten`);
          ops.push({ kind: 'reshape', name: dense, inputs: [input], targetShape: [inUnits] });
        }
        ops.push({
          kind: 'dense', name, inputs: [dense], kernel: transpose2d(constant(op.inputs[1])!, units, inUnits),
          kernelShape: [inUnits, units], bias: constant(op.inputs[2]), activation: activation(0),
        });
        break;
      }
      case 'SOFTMAX': {
        const beta = options?.float32(0, 1) ?? 1;
        if (beta !== 1) throw new UnsupportedOperatorError(`${source}: ${where}: SOFTMAX with beta ${beta} (only 1)`);
        ops.push({ kind: 'softmax', name, inputs: [input] });
        break;
      }
    }
    names.set(output.index, name);
  });
  const graph: Graph = { input: 'input', inputShape, ops, output: nameOf(subgraph.outputs[0]) };
  inferShapes(graph);
  return graph;
}

export function importTfliteFile(path: string): Graph {
  return importTflite(readFileSync(path), { source: path });
}
