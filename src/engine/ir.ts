/**
 * The engine's model IR: a small typed graph of layers with float32 weights, in NHWC order, that every
 * importer (TFLite, tfjs layers) produces and every builder (tfjs layers, ONNX) consumes. Each op has one
 * output, named like the op, so a layer name is also a tensor name. Ops are stored in execution order.
 */

/** swish(x) = x * sigmoid(x) (EfficientNet); sigmoid gates squeeze-and-excitation. */
export type Activation = 'linear' | 'relu' | 'relu6' | 'sigmoid' | 'swish';
export type Padding = 'same' | 'valid';

interface OpBase {
  name: string;
  inputs: string[];
}

/** y = x * scale + offset: the preprocessing from raw 0-255 pixels, kept inside the graph. */
export interface AffineOp extends OpBase {
  kind: 'affine';
  scale: number;
  offset: number;
}

/** What regular and depthwise convolutions share. */
interface ConvolutionFields {
  kernel: Float32Array;
  kernelShape: [number, number, number, number];
  bias: Float32Array | null;
  strides: [number, number];
  dilations: [number, number];
  padding: Padding;
  activation: Activation;
}

/** Kernel layout [kh, kw, inChannels, outChannels] (tfjs/Keras HWIO). */
export interface Conv2dOp extends OpBase, ConvolutionFields {
  kind: 'conv2d';
}

/** Kernel layout [kh, kw, channels, depthMultiplier] (tfjs/Keras). */
export interface DepthwiseConv2dOp extends OpBase, ConvolutionFields {
  kind: 'depthwiseConv2d';
}

export interface BatchNormOp extends OpBase {
  kind: 'batchNorm';
  gamma: Float32Array;
  beta: Float32Array;
  mean: Float32Array;
  variance: Float32Array;
  epsilon: number;
}

export interface AddOp extends OpBase {
  kind: 'add';
  activation: Activation;
}

export interface ActivationOp extends OpBase {
  kind: 'activation';
  activation: Activation;
}

export interface AveragePool2dOp extends OpBase {
  kind: 'averagePool2d';
  poolSize: [number, number];
  strides: [number, number];
  padding: Padding;
}

/** Mean over height and width; keepDims keeps a [1, 1, C] shape. */
export interface GlobalAveragePoolOp extends OpBase {
  kind: 'globalAveragePool';
  keepDims: boolean;
}

export interface ReshapeOp extends OpBase {
  kind: 'reshape';
  /** Shape without the batch dimension; every entry known. */
  targetShape: number[];
}

export interface DenseOp extends OpBase {
  kind: 'dense';
  /** Layout [inUnits, outUnits]. */
  kernel: Float32Array;
  kernelShape: [number, number];
  bias: Float32Array | null;
  activation: Activation;
}

export interface SoftmaxOp extends OpBase {
  kind: 'softmax';
}

/** Zeros around height and width: [[top, bottom], [left, right]] (Keras ZeroPadding2D). */
export interface PadOp extends OpBase {
  kind: 'pad';
  padding: [[number, number], [number, number]];
}

/** Elementwise product of two inputs; a size-1 axis of either broadcasts (squeeze-and-excitation's [1, 1, C] gate). */
export interface MultiplyOp extends OpBase {
  kind: 'multiply';
}

/** Keras Normalization: y = (x - mean) / max(sqrt(variance), 1e-7) per channel (last axis). */
export interface NormalizeOp extends OpBase {
  kind: 'normalize';
  mean: Float32Array;
  variance: Float32Array;
}

/**
 * Drop-connect (EfficientNet's stochastic depth): in training, each example's whole residual branch is dropped
 * with probability `rate` (Keras Dropout with noise shape (None, 1, 1, 1)); the identity in inference.
 */
export interface DropConnectOp extends OpBase {
  kind: 'dropConnect';
  rate: number;
}

/** Keras's floor on the standard deviation in Normalization. */
export const NORMALIZE_EPSILON = 1e-7;

export type Op =
  | AffineOp
  | Conv2dOp
  | DepthwiseConv2dOp
  | BatchNormOp
  | AddOp
  | ActivationOp
  | AveragePool2dOp
  | GlobalAveragePoolOp
  | ReshapeOp
  | DenseOp
  | SoftmaxOp
  | PadOp
  | MultiplyOp
  | NormalizeOp
  | DropConnectOp;

export type OpKind = Op['kind'];

export interface Graph {
  /** Name of the graph input tensor. */
  input: string;
  /** Input shape without the batch dimension. */
  inputShape: number[];
  ops: Op[];
  /** Name of the output tensor (an op name). */
  output: string;
}

export class GraphError extends Error {
  override name = 'GraphError';
}

function convOutputSize(size: number, kernel: number, stride: number, dilation: number, padding: Padding): number {
  const effective = (kernel - 1) * dilation + 1;
  return padding === 'same' ? Math.ceil(size / stride) : Math.floor((size - effective) / stride) + 1;
}

/** TF "SAME" padding for one spatial axis: [before, after], the odd pixel after. */
export function samePadding(size: number, kernel: number, stride: number, dilation: number): [number, number] {
  const effective = (kernel - 1) * dilation + 1;
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + effective - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Output shape (without batch) of every tensor; checks that weights fit their inputs. */
export function inferShapes(graph: Graph): Map<string, number[]> {
  const shapes = new Map<string, number[]>([[graph.input, graph.inputShape]]);
  const inputShape = (op: Op, i = 0): number[] => {
    const name = op.inputs[i];
    const shape = name === undefined ? undefined : shapes.get(name);
    if (!shape) throw new GraphError(`layer '${op.name}' reads '${name}', which is not computed before it`);
    return shape;
  };
  for (const op of graph.ops) {
    if (shapes.has(op.name)) throw new GraphError(`duplicate layer name '${op.name}'`);
    const x = inputShape(op);
    let out: number[];
    switch (op.kind) {
      case 'conv2d':
      case 'depthwiseConv2d': {
        const [kh, kw, cin, m] = op.kernelShape;
        if (x.length !== 3 || x[2] !== cin) {
          throw new GraphError(`layer '${op.name}' expects [H, W, ${cin}] input, got [${x.join(', ')}]`);
        }
        const channels = op.kind === 'conv2d' ? m : cin * m;
        out = [
          convOutputSize(x[0]!, kh, op.strides[0], op.dilations[0], op.padding),
          convOutputSize(x[1]!, kw, op.strides[1], op.dilations[1], op.padding),
          channels,
        ];
        break;
      }
      case 'averagePool2d':
        if (x.length !== 3) throw new GraphError(`layer '${op.name}' expects a rank-3 input, got [${x.join(', ')}]`);
        out = [
          convOutputSize(x[0]!, op.poolSize[0], op.strides[0], 1, op.padding),
          convOutputSize(x[1]!, op.poolSize[1], op.strides[1], 1, op.padding),
          x[2]!,
        ];
        break;
      case 'globalAveragePool':
        if (x.length !== 3) throw new GraphError(`layer '${op.name}' expects a rank-3 input, got [${x.join(', ')}]`);
        out = op.keepDims ? [1, 1, x[2]!] : [x[2]!];
        break;
      case 'add': {
        const y = inputShape(op, 1);
        if (!sameShape(x, y)) throw new GraphError(`layer '${op.name}' adds [${x.join(', ')}] and [${y.join(', ')}]`);
        out = x;
        break;
      }
      case 'reshape': {
        const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);
        if (size(x) !== size(op.targetShape)) {
          throw new GraphError(`layer '${op.name}' cannot reshape [${x.join(', ')}] to [${op.targetShape.join(', ')}]`);
        }
        out = op.targetShape;
        break;
      }
      case 'dense':
        if (x.length !== 1 || x[0] !== op.kernelShape[0]) {
          throw new GraphError(`layer '${op.name}' expects [${op.kernelShape[0]}] input, got [${x.join(', ')}]`);
        }
        out = [op.kernelShape[1]];
        break;
      case 'batchNorm':
        if (x[x.length - 1] !== op.gamma.length) {
          throw new GraphError(`layer '${op.name}' has ${op.gamma.length} channels, input [${x.join(', ')}]`);
        }
        out = x;
        break;
      case 'pad': {
        if (x.length !== 3) throw new GraphError(`layer '${op.name}' expects a rank-3 input, got [${x.join(', ')}]`);
        const [[top, bottom], [left, right]] = op.padding;
        out = [x[0]! + top + bottom, x[1]! + left + right, x[2]!];
        break;
      }
      case 'multiply': {
        const y = inputShape(op, 1);
        if (x.length !== y.length || x.some((d, i) => d !== y[i] && d !== 1 && y[i] !== 1)) {
          throw new GraphError(`layer '${op.name}' multiplies [${x.join(', ')}] and [${y.join(', ')}], which do not broadcast`);
        }
        out = x.map((d, i) => Math.max(d, y[i]!));
        break;
      }
      case 'normalize':
        if (x[x.length - 1] !== op.mean.length || op.variance.length !== op.mean.length) {
          throw new GraphError(`layer '${op.name}' normalizes ${op.mean.length} channels, input [${x.join(', ')}]`);
        }
        out = x;
        break;
      case 'affine':
      case 'activation':
      case 'softmax':
      case 'dropConnect':
        out = x;
        break;
    }
    shapes.set(op.name, out);
  }
  if (!shapes.has(graph.output)) throw new GraphError(`graph output '${graph.output}' is not a layer of the graph`);
  return shapes;
}

/** Keeps only the ops the output depends on. */
export function prune(graph: Graph, output = graph.output): Graph {
  const needed = new Set<string>([output]);
  const kept: Op[] = [];
  for (let i = graph.ops.length - 1; i >= 0; i--) {
    const op = graph.ops[i]!;
    if (!needed.has(op.name)) continue;
    kept.push(op);
    for (const input of op.inputs) needed.add(input);
  }
  if (output !== graph.input && !kept.some((op) => op.name === output)) {
    throw new GraphError(`unknown layer '${output}'`);
  }
  return { ...graph, ops: kept.reverse(), output };
}

export function layerNames(graph: Graph): string[] {
  return graph.ops.map((op) => op.name);
}

/**
 * The index of the first layer of the tail that starts at `cut`: either a layer name or a block prefix
 * such as 'block_16' (the first layer named 'block_16_…').
 */
function cutIndex(graph: Graph, cut: string): number {
  const index = graph.ops.findIndex((op) => op.name === cut || op.name.startsWith(`${cut}_`));
  if (index < 0) {
    throw new GraphError(`cut '${cut}' names no layer; layers: ${layerNames(graph).join(', ')}`);
  }
  return index;
}

/** The tensor crossing the cut: the input of the tail's first layer. Refuses cuts that a skip connection crosses. */
export function cutTensor(graph: Graph, cut: string): string {
  const index = cutIndex(graph, cut);
  const first = graph.ops[index]!;
  const crossing = new Set(first.inputs);
  if (crossing.size !== 1) throw new GraphError(`cut '${cut}': layer '${first.name}' has ${crossing.size} inputs`);
  const tensor = first.inputs[0]!;
  const producedInTail = new Set<string>();
  for (const op of graph.ops.slice(index)) {
    for (const input of op.inputs) {
      if (input !== tensor && !producedInTail.has(input)) {
        throw new GraphError(
          `cut '${cut}': layer '${op.name}' reads '${input}' from before the cut (a skip connection crosses it); cut at another block`,
        );
      }
    }
    producedInTail.add(op.name);
  }
  return tensor;
}

/** The frozen part: everything that computes the input of the layer at `cut`. */
export function trunkGraph(graph: Graph, cut: string): Graph {
  return prune(graph, cutTensor(graph, cut));
}

/** The trainable part: from the layer at `cut` to the output, reading the cut activation as its input. */
export function tailGraph(graph: Graph, cut: string): Graph {
  const tensor = cutTensor(graph, cut);
  const shape = inferShapes(graph).get(tensor)!;
  const ops = graph.ops.slice(cutIndex(graph, cut));
  return prune({ input: tensor, inputShape: shape, ops, output: graph.output });
}

/** Ends the graph at `layer`, flattening it to a vector named 'features' when it is not one already. */
export function featureGraph(graph: Graph, layer: string): Graph {
  const pruned = prune(graph, layer);
  const shape = inferShapes(pruned).get(layer)!;
  if (shape.length === 1) return pruned;
  const size = shape.reduce((a, b) => a * b, 1);
  const flatten: ReshapeOp = { kind: 'reshape', name: 'features', inputs: [layer], targetShape: [size] };
  return { ...pruned, ops: [...pruned.ops, flatten], output: 'features' };
}

/**
 * Folds each BatchNorm that directly follows a linear convolution or dense layer (whose output nothing
 * else reads) into that layer's weights: w' = w * g / sqrt(v + eps), b' = (b - mean) * g / sqrt(v + eps) + beta.
 */
export function foldBatchNorm(graph: Graph): Graph {
  const readers = new Map<string, number>();
  for (const op of graph.ops) for (const input of op.inputs) readers.set(input, (readers.get(input) ?? 0) + 1);
  const byName = new Map(graph.ops.map((op) => [op.name, op]));
  const replaced = new Map<string, Op>();
  const removed = new Set<string>();
  for (const op of graph.ops) {
    if (op.kind !== 'batchNorm') continue;
    const producer = byName.get(op.inputs[0]!);
    if (!producer || readers.get(producer.name) !== 1 || producer.name === graph.output) continue;
    if (producer.kind !== 'conv2d' && producer.kind !== 'depthwiseConv2d' && producer.kind !== 'dense') continue;
    if (producer.activation !== 'linear') continue;
    const channels = op.gamma.length;
    const factor = new Float32Array(channels);
    const bias = new Float32Array(channels);
    for (let c = 0; c < channels; c++) {
      factor[c] = op.gamma[c]! / Math.sqrt(op.variance[c]! + op.epsilon);
      bias[c] = ((producer.bias?.[c] ?? 0) - op.mean[c]!) * factor[c]! + op.beta[c]!;
    }
    // Output channel is the fastest-varying index in every kernel layout used here (HWIO, HWCM, [in, out]).
    const kernel = producer.kernel.map((w, i) => w * factor[i % channels]!);
    // The folded layer takes the BatchNorm's name, so readers and cut points stay valid.
    replaced.set(producer.name, { ...producer, name: op.name, kernel, bias } as Op);
    removed.add(op.name);
  }
  if (replaced.size === 0) return graph;
  const ops = graph.ops.flatMap((op) => (removed.has(op.name) ? [] : [replaced.get(op.name) ?? op]));
  return { ...graph, ops };
}

/**
 * The same network at another square input size. Convolutions do not care; an average pool that covered its
 * whole input (the global pooling of a fixed-size classifier, e.g. TFLite's 7x7 AvgPool) grows to cover the new
 * one, so the feature vector keeps its length. Throws when a fixed-size layer (a reshape of a spatial tensor)
 * cannot follow.
 */
export function withInputSize(graph: Graph, size: number): Graph {
  const [height, width, channels] = graph.inputShape;
  if (graph.inputShape.length !== 3 || channels === undefined) throw new GraphError(`input shape [${graph.inputShape.join(', ')}] is not [H, W, C]`);
  if (height === size && width === size) return graph;
  const shapes = inferShapes(graph);
  const resized: Graph = { ...graph, inputShape: [size, size, channels], ops: [...graph.ops] };
  for (const [i, op] of graph.ops.entries()) {
    if (op.kind !== 'averagePool2d' || op.padding !== 'valid') continue;
    const [h, w] = shapes.get(op.inputs[0]!)!;
    if (op.poolSize[0] !== h || op.poolSize[1] !== w) continue;
    const [newH, newW] = inferShapes({ ...resized, ops: resized.ops.slice(0, i), output: op.inputs[0]! }).get(op.inputs[0]!)!;
    resized.ops[i] = { ...op, poolSize: [newH!, newW!], strides: [newH!, newW!] };
  }
  try {
    inferShapes(resized);
  } catch (error) {
    throw new GraphError(`the network cannot take ${size}x${size} inputs: ${(error as Error).message}`);
  }
  return resized;
}
