/**
 * IR -> ONNX model bytes, built from onnx-proto's protobuf messages. The graph takes NHWC float32 input
 * (raw pixels for a full backbone) and returns NHWC output, so callers never see the NCHW layout that ONNX
 * convolutions need inside. BatchNorm is folded into convolutions first; one that cannot be folded is kept
 * as a BatchNormalization node.
 */
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import type { Activation, Graph } from '../ir.ts';
import { foldBatchNorm, inferShapes, NORMALIZE_EPSILON, samePadding } from '../ir.ts';

const { onnx } = onnxProto;
const OPSET = 13;
export const ONNX_INPUT = 'input';
export const ONNX_OUTPUT = 'output';

type Node = OnnxTypes.INodeProto;
type Attribute = OnnxTypes.IAttributeProto;

function ints(name: string, values: number[]): Attribute {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: values };
}
function int(name: string, value: number): Attribute {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i: value };
}
function float(name: string, value: number): Attribute {
  return { name, type: onnx.AttributeProto.AttributeType.FLOAT, f: value };
}

function floatTensor(name: string, dims: number[], values: Float32Array): OnnxTypes.ITensorProto {
  const copy = new Float32Array(values); // aligned, owned copy: rawData must be little-endian bytes
  return { name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(copy.buffer) };
}
function int64Tensor(name: string, values: number[]): OnnxTypes.ITensorProto {
  const data = new BigInt64Array(values.map((v) => BigInt(v)));
  return { name, dims: [values.length], dataType: onnx.TensorProto.DataType.INT64, rawData: new Uint8Array(data.buffer) };
}

function valueInfo(name: string, dims: Array<number | string>): OnnxTypes.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  };
}

/** Conv weights [O, I/group, kh, kw] from HWIO. */
function convWeightsFromHwio(kernel: Float32Array, [kh, kw, cin, cout]: [number, number, number, number]): Float32Array {
  const out = new Float32Array(kernel.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < cin; i++)
        for (let o = 0; o < cout; o++) out[((o * cin + i) * kh + y) * kw + x] = kernel[((y * kw + x) * cin + i) * cout + o]!;
  return out;
}

export interface OnnxExportOptions {
  /** Stored in the model's doc string, e.g. the source file and its hash. */
  docString?: string;
}

/** Encodes `graph` as an ONNX model (opset 13) with a dynamic batch dimension. */
export function exportOnnx(source: Graph, options: OnnxExportOptions = {}): Uint8Array {
  const graph = foldBatchNorm(source);
  const shapes = inferShapes(graph);
  const nodes: Node[] = [];
  const initializers: OnnxTypes.ITensorProto[] = [];
  // IR tensors of rank 3 (H, W, C) live as NCHW inside the ONNX graph; others keep their layout.
  const onnxName = new Map<string, string>();
  const isSpatial = (name: string): boolean => shapes.get(name)!.length === 3;
  let counter = 0;
  const fresh = (base: string): string => `${base}__${counter++}`;

  const constant = (base: string, dims: number[], values: Float32Array): string => {
    const name = fresh(base);
    initializers.push(floatTensor(name, dims, values));
    return name;
  };
  const activate = (value: string, activation: Activation, name: string): string => {
    if (activation === 'linear') return value;
    const out = fresh(`${name}/${activation}`);
    if (activation === 'relu') nodes.push({ opType: 'Relu', input: [value], output: [out], name: out });
    else if (activation === 'sigmoid') nodes.push({ opType: 'Sigmoid', input: [value], output: [out], name: out });
    else if (activation === 'swish') {
      const gate = fresh(`${name}/sigmoid`);
      nodes.push({ opType: 'Sigmoid', input: [value], output: [gate], name: gate });
      nodes.push({ opType: 'Mul', input: [value, gate], output: [out], name: out });
    } else {
      const min = constant(`${name}/clip_min`, [], new Float32Array([0]));
      const max = constant(`${name}/clip_max`, [], new Float32Array([6]));
      nodes.push({ opType: 'Clip', input: [value, min, max], output: [out], name: out });
    }
    return out;
  };
  const toNhwc = (name: string): string => {
    const out = fresh(`${name}/nhwc`);
    nodes.push({ opType: 'Transpose', input: [onnxName.get(name)!], output: [out], name: out, attribute: [ints('perm', [0, 2, 3, 1])] });
    return out;
  };

  const inputShape = graph.inputShape;
  if (inputShape.length === 3) {
    const out = fresh('input/nchw');
    nodes.push({ opType: 'Transpose', input: [ONNX_INPUT], output: [out], name: out, attribute: [ints('perm', [0, 3, 1, 2])] });
    onnxName.set(graph.input, out);
  } else {
    onnxName.set(graph.input, ONNX_INPUT);
  }

  for (const op of graph.ops) {
    const x = onnxName.get(op.inputs[0]!)!;
    const inShape = shapes.get(op.inputs[0]!)!;
    const out = fresh(op.name);
    switch (op.kind) {
      case 'affine': {
        const scaled = fresh(`${op.name}/scaled`);
        nodes.push({ opType: 'Mul', input: [x, constant(`${op.name}/scale`, [], new Float32Array([op.scale]))], output: [scaled], name: scaled });
        nodes.push({ opType: 'Add', input: [scaled, constant(`${op.name}/offset`, [], new Float32Array([op.offset]))], output: [out], name: out });
        onnxName.set(op.name, out);
        break;
      }
      case 'conv2d':
      case 'depthwiseConv2d': {
        const [kh, kw, cin, m] = op.kernelShape;
        const depthwise = op.kind === 'depthwiseConv2d';
        const cout = depthwise ? cin * m : m;
        // Depthwise [kh, kw, C, M] is output channel c*M+m: as HWIO with I=1 and O=C*M it is the same memory.
        const weights = depthwise
          ? convWeightsFromHwio(op.kernel, [kh, kw, 1, cout])
          : convWeightsFromHwio(op.kernel, op.kernelShape);
        const inputs = [x, constant(`${op.name}/weights`, [cout, depthwise ? 1 : cin, kh, kw], weights)];
        if (op.bias) inputs.push(constant(`${op.name}/bias`, [cout], op.bias));
        const [top, bottom] = op.padding === 'same' ? samePadding(inShape[0]!, kh, op.strides[0], op.dilations[0]) : [0, 0];
        const [left, right] = op.padding === 'same' ? samePadding(inShape[1]!, kw, op.strides[1], op.dilations[1]) : [0, 0];
        const conv = op.activation === 'linear' ? out : fresh(`${op.name}/conv`);
        nodes.push({
          opType: 'Conv', input: inputs, output: [conv], name: conv,
          attribute: [
            ints('kernel_shape', [kh, kw]), ints('strides', op.strides), ints('dilations', op.dilations),
            ints('pads', [top, left, bottom, right]), int('group', depthwise ? cin : 1),
          ],
        });
        onnxName.set(op.name, activate(conv, op.activation, op.name));
        break;
      }
      case 'batchNorm': {
        const c = op.gamma.length;
        const inputs = [x, ...[op.gamma, op.beta, op.mean, op.variance].map((v, i) => constant(`${op.name}/bn${i}`, [c], v))];
        nodes.push({ opType: 'BatchNormalization', input: inputs, output: [out], name: out, attribute: [float('epsilon', op.epsilon)] });
        onnxName.set(op.name, out);
        break;
      }
      case 'add': {
        const sum = op.activation === 'linear' ? out : fresh(`${op.name}/sum`);
        nodes.push({ opType: 'Add', input: [x, onnxName.get(op.inputs[1]!)!], output: [sum], name: sum });
        onnxName.set(op.name, activate(sum, op.activation, op.name));
        break;
      }
      case 'activation':
        onnxName.set(op.name, activate(x, op.activation, op.name));
        break;
      case 'averagePool2d': {
        const [kh, kw] = op.poolSize;
        const [top, bottom] = op.padding === 'same' ? samePadding(inShape[0]!, kh, op.strides[0], 1) : [0, 0];
        const [left, right] = op.padding === 'same' ? samePadding(inShape[1]!, kw, op.strides[1], 1) : [0, 0];
        nodes.push({
          opType: 'AveragePool', input: [x], output: [out], name: out,
          attribute: [ints('kernel_shape', [kh, kw]), ints('strides', op.strides), ints('pads', [top, left, bottom, right]), int('count_include_pad', 0)],
        });
        onnxName.set(op.name, out);
        break;
      }
      case 'globalAveragePool': {
        const pooled = op.keepDims ? out : fresh(`${op.name}/pool`);
        nodes.push({ opType: 'GlobalAveragePool', input: [x], output: [pooled], name: pooled });
        if (!op.keepDims) nodes.push({ opType: 'Flatten', input: [pooled], output: [out], name: out, attribute: [int('axis', 1)] });
        onnxName.set(op.name, out);
        break;
      }
      case 'reshape': {
        // Reshape follows NHWC element order, as tfjs and TFLite do.
        const source = isSpatial(op.inputs[0]!) ? toNhwc(op.inputs[0]!) : x;
        const shape = fresh(`${op.name}/shape`);
        initializers.push(int64Tensor(shape, [0, ...op.targetShape]));
        const reshaped = op.targetShape.length === 3 ? fresh(`${op.name}/nhwc`) : out;
        nodes.push({ opType: 'Reshape', input: [source, shape], output: [reshaped], name: reshaped });
        if (op.targetShape.length === 3) {
          nodes.push({ opType: 'Transpose', input: [reshaped], output: [out], name: out, attribute: [ints('perm', [0, 3, 1, 2])] });
        }
        onnxName.set(op.name, out);
        break;
      }
      case 'dense': {
        const [inUnits, units] = op.kernelShape;
        const inputs = [x, constant(`${op.name}/kernel`, [inUnits, units], op.kernel)];
        if (op.bias) inputs.push(constant(`${op.name}/bias`, [units], op.bias));
        const dense = op.activation === 'linear' ? out : fresh(`${op.name}/gemm`);
        nodes.push({ opType: 'Gemm', input: inputs, output: [dense], name: dense });
        onnxName.set(op.name, activate(dense, op.activation, op.name));
        break;
      }
      case 'pad': {
        // NCHW pads: [begin N, C, H, W, end N, C, H, W].
        const [[top, bottom], [left, right]] = op.padding;
        const pads = fresh(`${op.name}/pads`);
        initializers.push(int64Tensor(pads, [0, 0, top, left, 0, 0, bottom, right]));
        nodes.push({ opType: 'Pad', input: [x, pads], output: [out], name: out }); // mode 'constant', value 0 by default
        onnxName.set(op.name, out);
        break;
      }
      case 'dropConnect':
        nodes.push({ opType: 'Identity', input: [x], output: [out], name: out });
        onnxName.set(op.name, out);
        break;
      case 'multiply': {
        // Both operands are NCHW (or both vectors), so ONNX's numpy broadcasting matches the IR's.
        nodes.push({ opType: 'Mul', input: [x, onnxName.get(op.inputs[1]!)!], output: [out], name: out });
        onnxName.set(op.name, out);
        break;
      }
      case 'normalize': {
        const c = op.mean.length;
        const scale = Float32Array.from(op.variance, (v) => 1 / Math.max(Math.sqrt(v), NORMALIZE_EPSILON));
        const offset = Float32Array.from(op.mean, (m, i) => -m * scale[i]!);
        const dims = inShape.length === 3 ? [c, 1, 1] : [c];
        const scaled = fresh(`${op.name}/scaled`);
        nodes.push({ opType: 'Mul', input: [x, constant(`${op.name}/scale`, dims, scale)], output: [scaled], name: scaled });
        nodes.push({ opType: 'Add', input: [scaled, constant(`${op.name}/offset`, dims, offset)], output: [out], name: out });
        onnxName.set(op.name, out);
        break;
      }
      case 'softmax':
        if (inShape.length !== 1) throw new Error(`layer '${op.name}': softmax export supports vectors only`);
        nodes.push({ opType: 'Softmax', input: [x], output: [out], name: out, attribute: [int('axis', -1)] });
        onnxName.set(op.name, out);
        break;
    }
  }
  const outputShape = shapes.get(graph.output)!;
  const last = isSpatial(graph.output) ? toNhwc(graph.output) : onnxName.get(graph.output)!;
  nodes.push({ opType: 'Identity', input: [last], output: [ONNX_OUTPUT], name: ONNX_OUTPUT });
  const model: OnnxTypes.IModelProto = {
    irVersion: 7,
    producerName: 'covid-ct',
    docString: options.docString ?? '',
    opsetImport: [{ domain: '', version: OPSET }],
    graph: {
      name: 'backbone',
      node: nodes,
      initializer: initializers,
      input: [valueInfo(ONNX_INPUT, ['batch', ...inputShape])],
      output: [valueInfo(ONNX_OUTPUT, ['batch', ...outputShape])],
    },
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}
