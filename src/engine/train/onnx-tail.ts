/**
 * The tail on ONNX Runtime: its forward pass, the logit binary cross-entropy and every backward pass form one
 * ONNX graph whose weights are graph inputs, so MLAS's native GEMMs do the heavy work (tfjs-wasm's matmul
 * reaches a fraction of their speed) while tfjs keeps the variables and Adam's state. Spatial tensors live as
 * rows [N*H*W, C] (NHWC flattened): a pointwise convolution and both its gradients are then single GEMMs.
 * Depthwise convolutions on small maps become batched GEMMs with shift matrices; on larger ones they switch to
 * NCHW around ORT's grouped Conv (ConvTranspose for the input gradient of a strided one). Tails with other layers (BatchNormalization, squeeze-excitation,
 * k x k regular convolutions) raise UnsupportedTailError and the caller trains them on tfjs.
 */
import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { Rng } from '../../data/random.ts';
import { samePadding } from '../ir.ts';
import { layerWeight } from './fusion-plan.ts';
import type { BatchGradientFn } from './gradients.ts';
import { runTailBatched } from './tail-graph.ts';

const { onnx } = onnxProto;
const OPSET = 13;
const FLOAT = onnx.TensorProto.DataType.FLOAT;

/** The tail holds a layer the ONNX training graph does not cover; train it on tfjs instead. */
export class UnsupportedTailError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedTailError';
  }
}

type Layer = tfl.layers.Layer;
type Config = Record<string, unknown>;
type Act = 'linear' | 'relu' | 'relu6';
type Attribute = OnnxTypes.IAttributeProto;

/** A tensor of the graph in rows layout [N*h*w, c]; `grad` when a trainable weight lies upstream. */
type Value = { name: string; h: number; w: number; c: number; grad: boolean };

type Param = {
  variable: tf.Variable;
  input: string;
  dims: number[];
  trainable: boolean;
  /** tfjs layout -> ONNX layout and back (identity when the memory order already agrees). */
  toOnnx: (values: Float32Array) => Float32Array;
  fromOnnx: (values: Float32Array) => Float32Array;
};

type Dropout = { input: string; width: number; rate: number };

/** Depthwise layers whose output x input positions stay within this use shift matrices (see depthwiseByShifts). */
export const SHIFT_MATRIX_LIMIT = 10_000;

const identity = (values: Float32Array): Float32Array => values;

function ints(name: string, values: number[]): Attribute {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: values };
}
function int(name: string, value: number): Attribute {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i: value };
}

function pair(value: unknown, what: string): [number, number] {
  if (typeof value === 'number') return [value, value];
  if (Array.isArray(value) && value.length === 2 && value.every((v) => typeof v === 'number')) return value as [number, number];
  throw new UnsupportedTailError(`${what}: expected a number or a pair, got ${JSON.stringify(value)}`);
}

function activationOf(config: Config, layer: string): Act {
  const activation = config['activation'] ?? 'linear';
  if (activation === 'linear' || activation === 'relu' || activation === 'relu6') return activation;
  throw new UnsupportedTailError(`layer '${layer}': activation '${String(activation)}'`);
}

function reluKind(config: Config, layer: string): Act {
  const max = config['maxValue'];
  if (max == null) return 'relu';
  if (max === 6) return 'relu6';
  throw new UnsupportedTailError(`layer '${layer}': ReLU with max ${String(max)}`);
}

/** Inverted-dropout mask: each of count x width entries is 1 / (1 - rate) with probability 1 - rate, else 0. */
export function dropoutMask(rng: Rng, count: number, width: number, rate: number): Float32Array {
  const keep = 1 - rate;
  const mask = new Float32Array(count * width);
  for (let i = 0; i < mask.length; i++) mask[i] = rng.next() < keep ? 1 / keep : 0;
  return mask;
}

/** Collects nodes, constants and graph inputs/outputs; every produced name is fresh. */
class GraphBuilder {
  readonly nodes: OnnxTypes.INodeProto[] = [];
  readonly initializers: OnnxTypes.ITensorProto[] = [];
  readonly inputs: OnnxTypes.IValueInfoProto[] = [];
  readonly outputs: OnnxTypes.IValueInfoProto[] = [];
  private counter = 0;

  fresh(base: string): string {
    return `${base}__${this.counter++}`;
  }

  op(opType: string, input: string[], base: string, attribute: Attribute[] = []): string {
    const out = this.fresh(base);
    this.nodes.push({ opType, input, output: [out], name: out, attribute });
    return out;
  }

  /** An operator of ONNX Runtime's com.microsoft domain (the graph only ever runs on ONNX Runtime). */
  msOp(opType: string, input: string[], base: string, attribute: Attribute[] = []): string {
    const out = this.fresh(base);
    this.nodes.push({ opType, domain: 'com.microsoft', input, output: [out], name: out, attribute });
    return out;
  }

  floats(base: string, dims: number[], values: number[] | Float32Array): string {
    const name = this.fresh(base);
    const data = new Float32Array(values);
    this.initializers.push({ name, dims, dataType: FLOAT, rawData: new Uint8Array(data.buffer) });
    return name;
  }

  int64s(base: string, values: number[]): string {
    const name = this.fresh(base);
    const data = new BigInt64Array(values.map((v) => BigInt(v)));
    this.initializers.push({ name, dims: [values.length], dataType: onnx.TensorProto.DataType.INT64, rawData: new Uint8Array(data.buffer) });
    return name;
  }

  input(name: string, dims: Array<number | string>): string {
    this.inputs.push(valueInfo(name, dims));
    return name;
  }

  output(name: string, dims: Array<number | string>): void {
    this.outputs.push(valueInfo(name, dims));
  }

  encode(): Uint8Array {
    return onnx.ModelProto.encode({
      irVersion: 8,
      opsetImport: [{ domain: '', version: OPSET }, { domain: 'com.microsoft', version: 1 }],
      producerName: 'covid-ct',
      graph: { name: 'tail', node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs },
    }).finish();
  }
}

function valueInfo(name: string, dims: Array<number | string>): OnnxTypes.IValueInfoProto {
  const dim = dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d }));
  return { name, type: { tensorType: { elemType: FLOAT, shape: { dim } } } };
}

/** `gradients`: per trainable weight (model.trainableWeights order), the graph output and the parameter it belongs to. */
type Compiled = { bytes: Uint8Array; params: Param[]; dropouts: Dropout[]; gradients: Array<{ output: string; param: Param }>; width: number };

/**
 * Builds the tail's graph: with `training`, inputs features, labels, inv_count, dropout masks and weights;
 * outputs `loss` and one gradient per trainable weight (model.trainableWeights order). Without, it outputs
 * the model's output as `output` (dropout off): logits, or the pooled features of a backbone's tail.
 */
function compile(model: tfl.LayersModel, featureShape: number[], training: boolean, shiftMatrixLimit: number): Compiled {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) throw new UnsupportedTailError('the tail must have one input and one output');
  if (featureShape.length !== 3 && featureShape.length !== 1) throw new UnsupportedTailError(`features of shape ${JSON.stringify(featureShape)} (expected [h, w, c] or [c])`);
  const g = new GraphBuilder();
  const [h0, w0, c0] = featureShape.length === 3 ? (featureShape as [number, number, number]) : [1, 1, featureShape[0]!];
  const values = new Map<number, Value>();
  values.set(model.inputs[0]!.id, { name: g.input('features', ['rows', c0]), h: h0, w: w0, c: c0, grad: false });
  const params: Param[] = [];
  const dropouts: Dropout[] = [];
  const trainable = new Set(model.trainableWeights);
  const backward: Array<() => void> = [];
  const gradParts = new Map<string, string[]>();
  const paramGrads = new Map<Param, string>();

  const addGrad = (value: Value, grad: string) => {
    if (!value.grad) return;
    gradParts.set(value.name, [...(gradParts.get(value.name) ?? []), grad]);
  };
  const gradOf = (value: Value): string | undefined => {
    const parts = gradParts.get(value.name);
    if (!parts) return undefined;
    return parts.length === 1 ? parts[0]! : g.op('Sum', parts, `${value.name}/grad_sum`);
  };
  const param = (layer: Layer, suffix: string, dims: number[], layout: Pick<Param, 'toOnnx' | 'fromOnnx'> = { toOnnx: identity, fromOnnx: identity }): Param => {
    const weight = layerWeight(layer, suffix);
    if (!weight) throw new UnsupportedTailError(`layer '${layer.name}' has no weight '${suffix}'`);
    const created: Param = { variable: weight.read() as tf.Variable, input: g.input(`${layer.name}/${suffix}`, dims), dims, trainable: trainable.has(weight), ...layout };
    params.push(created);
    return created;
  };
  const activate = (z: string, act: Act, base: string): string => {
    if (act === 'linear') return z;
    if (act === 'relu') return g.op('Relu', [z], `${base}/relu`);
    return g.op('Clip', [z, g.floats('zero', [], [0]), g.floats('six', [], [6])], `${base}/relu6`);
  };
  // Gradient through the activation, from its input z (as tfjs: relu6 passes 0 < z <= 6).
  const activateGrad = (dy: string, z: string, act: Act, base: string): string => {
    if (act === 'linear') return dy;
    const positive = g.op('Greater', [z, g.floats('zero', [], [0])], `${base}/positive`);
    const open = act === 'relu' ? positive : g.op('And', [positive, g.op('LessOrEqual', [z, g.floats('six', [], [6])], `${base}/le6`)], `${base}/open`);
    return g.op('Where', [open, dy, g.floats('zero', [], [0])], `${base}/dz`);
  };
  const rowSums = (x: string, base: string): string => g.op('ReduceSum', [x, g.int64s('axes', [0])], base, [int('keepdims', 0)]);

  /** z = x W (+ b) on rows; with gradients for W, b and x. */
  const dense = (layer: Layer, x: Value, cout: number, act: Act, kernelDims: number[], out: { h: number; w: number }): Value => {
    const kernel = param(layer, 'kernel', kernelDims);
    const useBias = (layer.getConfig() as Config)['useBias'] !== false;
    const bias = useBias ? param(layer, 'bias', [cout]) : undefined;
    const weights2d = kernelDims.length === 2 ? kernel.input : g.op('Reshape', [kernel.input, g.int64s('shape', [x.c, cout])], `${layer.name}/w2d`);
    const product = g.op('MatMul', [x.name, weights2d], `${layer.name}/matmul`);
    const z = bias ? g.op('Add', [product, bias.input], `${layer.name}/z`) : product;
    const y: Value = { name: activate(z, act, layer.name), ...out, c: cout, grad: x.grad || kernel.trainable || !!bias?.trainable };
    backward.push(() => {
      const dy = gradOf(y);
      if (!dy) return;
      const dz = activateGrad(dy, z, act, layer.name);
      if (kernel.trainable) {
        const dw = g.op('Gemm', [x.name, dz], `${layer.name}/dkernel`, [int('transA', 1)]);
        paramGrads.set(kernel, kernelDims.length === 2 ? dw : g.op('Reshape', [dw, g.int64s('shape', kernelDims)], `${layer.name}/dkernel4d`));
      }
      if (bias?.trainable) paramGrads.set(bias, rowSums(dz, `${layer.name}/dbias`));
      if (x.grad) addGrad(x, g.op('Gemm', [dz, weights2d], `${layer.name}/dx`, [int('transB', 1)]));
    });
    return y;
  };

  const toNchw = (x: string, h: number, w: number, c: number, base: string): string =>
    g.op('Transpose', [g.op('Reshape', [x, g.int64s('shape', [-1, h, w, c])], `${base}/nhwc`)], `${base}/nchw`, [ints('perm', [0, 3, 1, 2])]);
  const toRows = (x: string, c: number, base: string): string =>
    g.op('Reshape', [g.op('Transpose', [x], `${base}/to_nhwc`, [ints('perm', [0, 2, 3, 1])]), g.int64s('shape', [-1, c])], `${base}/rows`);

  /**
   * A depthwise convolution on small maps as matrices: with S_t the 0/1 matrix that picks, for each output
   * position, the input position under tap t (stride and padding included), channel c's output is
   * X_c (sum_t w[c, t] S_t)^T for X_c = [N, positions]. Forward, input gradient and filter gradient are then
   * batched GEMMs over channels in a [C, N, positions] layout (a plain 2-D transpose of the rows), with no
   * padding, windows or grouped Conv.
   */
  const depthwiseByShifts = (
    name: string, x: Value, geo: { kh: number; kw: number; sh: number; sw: number; top: number; left: number; ho: number; wo: number; act: Act },
    kernel: Param, bias: Param | undefined, grad: boolean,
  ): Value => {
    const { kh, kw, sh, sw, top, left, ho, wo, act } = geo;
    const [c, pin, pout, taps] = [x.c, x.h * x.w, ho * wo, kh * kw];
    // shifts[t][q][p] = 1 when output position p reads input position q under tap t.
    const shifts = new Float32Array(taps * pin * pout);
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        for (let oy = 0; oy < ho; oy++) {
          for (let ox = 0; ox < wo; ox++) {
            const [iy, ix] = [oy * sh + i - top, ox * sw + j - left];
            if (iy >= 0 && iy < x.h && ix >= 0 && ix < x.w) shifts[((i * kw + j) * pin + iy * x.w + ix) * pout + oy * wo + ox] = 1;
          }
        }
      }
    }
    const shiftRows = g.floats(`${name}/shifts`, [taps, pin * pout], shifts);
    const weights2d = g.op('Reshape', [kernel.input, g.int64s('shape', [c, taps])], `${name}/w2d`);
    // [C, pin, pout]: channel c's input-to-output matrix.
    const effective = g.op('Reshape', [g.op('MatMul', [weights2d, shiftRows], `${name}/w_eff2d`), g.int64s('shape', [c, pin, pout])], `${name}/w_eff`);
    const channelsFirst = (rows: string, positions: number, base: string) =>
      g.op('Transpose', [g.op('Reshape', [rows, g.int64s('shape', [-1, positions, c])], `${base}/npc`)], `${base}/cnp`, [ints('perm', [2, 0, 1])]);
    const rowsOf = (cnp: string, base: string) =>
      g.op('Reshape', [g.op('Transpose', [cnp], `${base}/npc`, [ints('perm', [1, 2, 0])]), g.int64s('shape', [-1, c])], `${base}/rows`);
    const xc = channelsFirst(x.name, pin, `${name}/x`);
    const product = g.op('MatMul', [xc, effective], `${name}/matmul`);
    const z = bias ? g.op('Add', [product, g.op('Reshape', [bias.input, g.int64s('shape', [c, 1, 1])], `${name}/bias3d`)], `${name}/z`) : product;
    const y: Value = { name: rowsOf(activate(z, act, name), `${name}/y`), h: ho, w: wo, c, grad };
    backward.push(() => {
      const dy = gradOf(y);
      if (!dy) return;
      const dz = activateGrad(channelsFirst(dy, pout, `${name}/dy`), z, act, name);
      if (bias?.trainable) paramGrads.set(bias, g.op('ReduceSum', [dz, g.int64s('axes', [1, 2])], `${name}/dbias`, [int('keepdims', 0)]));
      if (kernel.trainable) {
        // dW[c, t] = sum over (q, p) of S_t[q, p] (X_c^T dZ_c)[q, p].
        // ORT's own FusedMatMul reads X_c transposed in place: an explicit Transpose of [C, N, pin] is slow.
        const outer = g.msOp('FusedMatMul', [xc, dz], `${name}/outer`, [int('transA', 1)]);
        const perTap = g.op('Gemm', [g.op('Reshape', [outer, g.int64s('shape', [c, pin * pout])], `${name}/outer2d`), shiftRows], `${name}/dw2d`, [int('transB', 1)]);
        paramGrads.set(kernel, g.op('Reshape', [perTap, g.int64s('shape', kernel.dims)], `${name}/dkernel`));
      }
      if (x.grad) {
        const back = g.op('MatMul', [dz, g.op('Transpose', [effective], `${name}/w_eff_t`, [ints('perm', [0, 2, 1])])], `${name}/dx_cnp`);
        addGrad(x, rowsOf(back, `${name}/dx`));
      }
    });
    return y;
  };

  const depthwise = (layer: Layer, x: Value): Value => {
    const config = layer.getConfig() as Config;
    const [kh, kw] = pair(config['kernelSize'], `layer '${layer.name}' kernelSize`);
    const [sh, sw] = pair(config['strides'] ?? 1, `layer '${layer.name}' strides`);
    const dilation = pair(config['dilationRate'] ?? 1, `layer '${layer.name}' dilationRate`);
    if (dilation[0] !== 1 || dilation[1] !== 1) throw new UnsupportedTailError(`layer '${layer.name}': dilation ${dilation.join('x')}`);
    if ((config['depthMultiplier'] ?? 1) !== 1) throw new UnsupportedTailError(`layer '${layer.name}': depth multiplier ${String(config['depthMultiplier'])}`);
    const padding = config['padding'];
    if (padding !== 'same' && padding !== 'valid') throw new UnsupportedTailError(`layer '${layer.name}': padding '${String(padding)}'`);
    const act = activationOf(config, layer.name);
    const c = x.c;
    const [top, bottom] = padding === 'same' ? samePadding(x.h, kh, sh, 1) : [0, 0];
    const [left, right] = padding === 'same' ? samePadding(x.w, kw, sw, 1) : [0, 0];
    const ho = Math.floor((x.h + top + bottom - kh) / sh) + 1;
    const wo = Math.floor((x.w + left + right - kw) / sw) + 1;
    // tfjs [kh, kw, c, 1] <-> ONNX [c, 1, kh, kw]: a transpose of a (kh*kw) x c matrix.
    const taps = kh * kw;
    const transpose = (rows: number, cols: number) => (values: Float32Array): Float32Array => {
      const out = new Float32Array(values.length);
      for (let r = 0; r < rows; r++) for (let k = 0; k < cols; k++) out[k * rows + r] = values[r * cols + k]!;
      return out;
    };
    const kernel = param(layer, 'depthwise_kernel', [c, 1, kh, kw], { toOnnx: transpose(taps, c), fromOnnx: transpose(c, taps) });
    const bias = config['useBias'] !== false ? param(layer, 'bias', [c]) : undefined;
    const grad = x.grad || kernel.trainable || !!bias?.trainable;
    if (ho * wo * x.h * x.w <= shiftMatrixLimit) {
      return depthwiseByShifts(layer.name, x, { kh, kw, sh, sw, top, left, ho, wo, act }, kernel, bias, grad);
    }
    const convAttrs = [int('group', c), ints('kernel_shape', [kh, kw]), ints('strides', [sh, sw]), ints('pads', [top, left, bottom, right])];
    const xn = toNchw(x.name, x.h, x.w, c, layer.name);
    const zn = g.op('Conv', [xn, kernel.input, ...(bias ? [bias.input] : [])], `${layer.name}/conv`, convAttrs);
    const an = activate(zn, act, layer.name);
    const y: Value = { name: toRows(an, c, layer.name), h: ho, w: wo, c, grad };
    backward.push(() => {
      const dy = gradOf(y);
      if (!dy) return;
      const dzn = activateGrad(toNchw(dy, ho, wo, c, `${layer.name}/dy`), zn, act, layer.name);
      if (bias?.trainable) paramGrads.set(bias, g.op('ReduceSum', [dzn, g.int64s('axes', [0, 2, 3])], `${layer.name}/dbias`, [int('keepdims', 0)]));
      if (kernel.trainable) {
        // dW[c, i, j] = sum over n, y, x of xpad[n, c, y*s + i, x*s + j] dz[n, c, y, x]: a grouped convolution
        // of the input seen as one example with C groups of N channels, by dz as C filters of N channels,
        // dilated by the stride. One Conv instead of kh*kw shifted windows.
        const inputByChannel = g.op('Reshape', [g.op('Transpose', [xn], `${layer.name}/x_cn`, [ints('perm', [1, 0, 2, 3])]), g.int64s('shape', [1, -1, x.h, x.w])], `${layer.name}/x_groups`);
        const dzByChannel = g.op('Transpose', [dzn], `${layer.name}/dz_cn`, [ints('perm', [1, 0, 2, 3])]);
        const correlation = g.op('Conv', [inputByChannel, dzByChannel], `${layer.name}/dw_conv`, [int('group', c), ints('dilations', [sh, sw]), ints('pads', [top, left, bottom, right])]);
        // VALID padding can leave rows and columns past the kernel (the forward pass never read them).
        const cropped = g.op('Slice', [correlation, g.int64s('starts', [0, 0]), g.int64s('ends', [kh, kw]), g.int64s('axes', [2, 3])], `${layer.name}/dw_crop`);
        paramGrads.set(kernel, g.op('Reshape', [cropped, g.int64s('shape', [c, 1, kh, kw])], `${layer.name}/dkernel`));
      }
      if (x.grad) {
        let dxn: string;
        if (sh === 1 && sw === 1) {
          // Stride 1: the input gradient is the correlation of dz with the kernel turned by 180 degrees
          // (a plain grouped Conv, about twice as fast in ORT as ConvTranspose).
          const turned = g.op('Slice', [kernel.input, g.int64s('starts', [-1, -1]), g.int64s('ends', [-(2 ** 62), -(2 ** 62)]), g.int64s('axes', [2, 3]), g.int64s('steps', [-1, -1])], `${layer.name}/w_turned`);
          dxn = g.op('Conv', [dzn, turned], `${layer.name}/dx`, [int('group', c), ints('kernel_shape', [kh, kw]), ints('pads', [kh - 1 - top, kw - 1 - left, kh - 1 - bottom, kw - 1 - right])]);
        } else {
          const outputPadding = [x.h - (sh * (ho - 1) + kh - top - bottom), x.w - (sw * (wo - 1) + kw - left - right)];
          dxn = g.op('ConvTranspose', [dzn, kernel.input], `${layer.name}/dx`, [...convAttrs, ints('output_padding', outputPadding)]);
        }
        addGrad(x, toRows(dxn, c, `${layer.name}/dx`));
      }
    });
    return y;
  };

  for (const layer of model.layers) {
    const className = layer.getClassName();
    if (className === 'InputLayer') continue;
    // A layer shared with another model (the head's dropout and dense serve the classifier and the head) has
    // one node per model: take the one that reads this model's tensors.
    const nodes = layer.inboundNodes.filter((n) => n.inputTensors.every((symbolic) => values.has(symbolic.id)));
    if (nodes.length !== 1) throw new UnsupportedTailError(`layer '${layer.name}' is applied ${nodes.length} times to this tail's tensors`);
    const node = nodes[0]!;
    const inputs = node.inputTensors.map((symbolic) => values.get(symbolic.id));
    const [x] = inputs as [Value, ...Value[]];
    const config = layer.getConfig() as Config;
    let y: Value;
    switch (className) {
      case 'Conv2D': {
        const kernelSize = pair(config['kernelSize'], `layer '${layer.name}' kernelSize`);
        const strides = pair(config['strides'] ?? 1, `layer '${layer.name}' strides`);
        if (kernelSize.some((k) => k !== 1) || strides.some((s) => s !== 1)) {
          throw new UnsupportedTailError(`layer '${layer.name}': a ${kernelSize.join('x')} convolution with strides ${strides.join('x')} (only pointwise ones)`);
        }
        const filters = Number(config['filters']);
        y = dense(layer, x, filters, activationOf(config, layer.name), [1, 1, x.c, filters], { h: x.h, w: x.w });
        break;
      }
      case 'DepthwiseConv2D':
        y = depthwise(layer, x);
        break;
      case 'Dense': {
        if (x.h !== 1 || x.w !== 1) throw new UnsupportedTailError(`layer '${layer.name}': a dense layer on a spatial input`);
        const units = Number(config['units']);
        y = dense(layer, x, units, activationOf(config, layer.name), [x.c, units], { h: 1, w: 1 });
        break;
      }
      case 'Add': {
        const all = inputs as Value[];
        if (all.some((v) => v.h !== x.h || v.w !== x.w || v.c !== x.c)) throw new UnsupportedTailError(`layer '${layer.name}': adds tensors of different shapes`);
        y = { ...x, name: g.op('Sum', all.map((v) => v.name), layer.name), grad: all.some((v) => v.grad) };
        const out = y;
        backward.push(() => {
          const dy = gradOf(out);
          if (dy) for (const v of all) addGrad(v, dy);
        });
        break;
      }
      case 'ReLU':
      case 'Activation': {
        const act = className === 'ReLU' ? reluKind(config, layer.name) : activationOf(config, layer.name);
        y = { ...x, name: activate(x.name, act, layer.name) };
        const out = y;
        backward.push(() => {
          const dy = gradOf(out);
          if (dy) addGrad(x, activateGrad(dy, x.name, act, layer.name));
        });
        break;
      }
      case 'AveragePooling2D':
      case 'GlobalAveragePooling2D': {
        if (className === 'AveragePooling2D') {
          const [ph, pw] = pair(config['poolSize'], `layer '${layer.name}' poolSize`);
          if (ph !== x.h || pw !== x.w || config['padding'] !== 'valid') throw new UnsupportedTailError(`layer '${layer.name}': only a global average pool is supported`);
        }
        const area = x.h * x.w;
        const grouped = g.op('Reshape', [x.name, g.int64s('shape', [-1, area, x.c])], `${layer.name}/grouped`);
        y = { name: g.op('ReduceMean', [grouped], layer.name, [ints('axes', [1]), int('keepdims', 0)]), h: 1, w: 1, c: x.c, grad: x.grad };
        const out = y;
        backward.push(() => {
          const dy = gradOf(out);
          if (!dy) return;
          const spread = g.op('Mul', [g.op('Unsqueeze', [dy, g.int64s('axes', [1])], `${layer.name}/dy3d`), g.floats('share', [1, area, 1], new Float32Array(area).fill(1 / area))], `${layer.name}/spread`);
          addGrad(x, g.op('Reshape', [spread, g.int64s('shape', [-1, x.c])], `${layer.name}/dx`));
        });
        break;
      }
      case 'Reshape':
      case 'Flatten': {
        const target = className === 'Flatten' ? [x.h * x.w * x.c] : (config['targetShape'] as number[]);
        if (x.h !== 1 || x.w !== 1 || target.length !== 1 || target[0] !== x.c) {
          throw new UnsupportedTailError(`layer '${layer.name}': a reshape other than [1, 1, c] -> [c]`);
        }
        y = x; // rows [N, c] already
        break;
      }
      case 'Dropout': {
        if (config['noiseShape'] != null) throw new UnsupportedTailError(`layer '${layer.name}': dropout with a noise shape`);
        const rate = Number(config['rate']);
        if (!training || rate === 0) {
          y = x;
          break;
        }
        if (x.h !== 1 || x.w !== 1) throw new UnsupportedTailError(`layer '${layer.name}': dropout on a spatial tensor`);
        const mask = g.input(`${layer.name}/mask`, ['batch', x.c]);
        dropouts.push({ input: mask, width: x.c, rate });
        y = { ...x, name: g.op('Mul', [x.name, mask], layer.name) };
        const out = y;
        backward.push(() => {
          const dy = gradOf(out);
          if (dy) addGrad(x, g.op('Mul', [dy, mask], `${layer.name}/dx`));
        });
        break;
      }
      default:
        throw new UnsupportedTailError(`layer '${layer.name}' of class ${className}`);
    }
    if (node.outputTensors.length !== 1) throw new UnsupportedTailError(`layer '${layer.name}' has ${node.outputTensors.length} outputs`);
    values.set(node.outputTensors[0]!.id, y);
  }

  const logits = values.get(model.outputs[0]!.id)!;
  if (!training) {
    if (logits.h !== 1 || logits.w !== 1) throw new UnsupportedTailError('the tail must end in a vector per example');
    g.nodes.push({ opType: 'Identity', input: [logits.name], output: ['output'], name: 'output' });
    g.output('output', ['batch', logits.c]);
    return { bytes: g.encode(), params, dropouts, gradients: [], width: logits.c };
  }
  if (logits.h !== 1 || logits.w !== 1 || logits.c !== 1) throw new UnsupportedTailError('the tail must end in one logit per example');
  // Mean binary cross-entropy from logits: max(z, 0) - z y + log(1 + exp(-|z|)); dL/dz = (sigmoid(z) - y) / N.
  const labels = g.input('labels', ['batch', 1]);
  const invCount = g.input('inv_count', [1]);
  const z = logits.name;
  const perExample = g.op('Add', [
    g.op('Sub', [g.op('Relu', [z], 'loss/relu'), g.op('Mul', [z, labels], 'loss/zy')], 'loss/linear'),
    g.op('Softplus', [g.op('Neg', [g.op('Abs', [z], 'loss/abs')], 'loss/neg')], 'loss/softplus'),
  ], 'loss/terms');
  g.nodes.push({ opType: 'ReduceMean', input: [perExample], output: ['loss'], name: 'loss', attribute: [int('keepdims', 0)] });
  g.output('loss', []);
  addGrad(logits, g.op('Mul', [g.op('Sub', [g.op('Sigmoid', [z], 'loss/sigmoid'), labels], 'loss/residual'), invCount], 'loss/dz'));
  for (const step of backward.reverse()) step();
  const gradients: Compiled['gradients'] = [];
  for (const weight of model.trainableWeights) {
    const owner = params.find((p) => p.variable === weight.read());
    const grad = owner && paramGrads.get(owner);
    if (!owner || !grad) throw new UnsupportedTailError(`no gradient reaches the trainable weight '${weight.name}'`);
    const name = `grad/${weight.name}`;
    g.nodes.push({ opType: 'Identity', input: [grad], output: [name], name });
    g.output(name, owner.dims);
    gradients.push({ output: name, param: owner });
  }
  return { bytes: g.encode(), params, dropouts, gradients, width: 1 };
}

/**
 * `spin`: idle intra-op threads busy-wait for the next run. That suits the training loop's back-to-back steps;
 * an inference session runs between the trunk's and sharp's work, where spinning threads steal both cores
 * (a served prediction took twice as long).
 */
async function session(bytes: Uint8Array, threads: number, spin: boolean): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    ...(!spin && { extra: { session: { intra_op: { allow_spinning: '0' } } } }),
  });
}

export interface OnnxTailOptions {
  /** ONNX Runtime intra-op threads; default os.availableParallelism(). */
  threads?: number;
  /** Seed of the dropout masks when a batch brings no key of its own. */
  seed?: number;
  /**
   * false: the forward graph only (outputs), for a model that is not trained, e.g. a frozen backbone part or a
   * served model; its weights are then read once, not before every run.
   */
  training?: boolean;
  /** Largest output x input positions of a depthwise layer done with shift matrices; larger ones use grouped Conv. */
  shiftMatrixLimit?: number;
}

/** A tfjs tail model run by ONNX Runtime: gradients for training, outputs (logits, features) for evaluation. */
export class OnnxTail {
  private constructor(
    private readonly featureShape: number[],
    private readonly trainGraph: Compiled | undefined,
    private readonly trainSession: ort.InferenceSession | undefined,
    private readonly inferGraph: Compiled,
    private readonly inferSession: ort.InferenceSession,
    private readonly rng: Rng,
  ) {}

  /** A forward-only tail's weight feeds, read on first use (its weights do not change). */
  private frozenWeights: Record<string, ort.Tensor> | undefined;

  /**
   * Compiles `model` for features of `featureShape`; throws UnsupportedTailError when a layer is not covered.
   * With `training: false` only the forward graph is built (any model ending in a vector).
   */
  static async create(model: tfl.LayersModel, featureShape: number[], options: OnnxTailOptions = {}): Promise<OnnxTail> {
    const threads = options.threads ?? availableParallelism();
    const limit = options.shiftMatrixLimit ?? SHIFT_MATRIX_LIMIT;
    const trainGraph = options.training === false ? undefined : compile(model, featureShape, true, limit);
    const inferGraph = compile(model, featureShape, false, limit);
    const [trainSession, inferSession] = await Promise.all([trainGraph && session(trainGraph.bytes, threads, true), session(inferGraph.bytes, threads, false)]);
    return new OnnxTail(featureShape, trainGraph, trainSession, inferGraph, inferSession, new Rng(options.seed ?? 0));
  }

  private weightFeeds(graph: Compiled): Record<string, ort.Tensor> {
    const feeds: Record<string, ort.Tensor> = {};
    for (const p of graph.params) feeds[p.input] = new ort.Tensor('float32', p.toOnnx(p.variable.dataSync() as Float32Array), p.dims);
    return feeds;
  }

  private rowsOf(features: Float32Array, count: number): ort.Tensor {
    const per = this.featureShape.reduce((a, b) => a * b, 1);
    const channels = this.featureShape.at(-1)!;
    if (features.length !== count * per) throw new Error(`features hold ${features.length} values, expected ${count} x ${per}`);
    return new ort.Tensor('float32', features, [(count * per) / channels, channels]);
  }

  /**
   * Loss and gradients of one batch with the model's current weights. `key` seeds the batch's dropout masks
   * (so a resumed run draws the same ones); without it they come from the tail's own stream.
   */
  readonly batchGradients: BatchGradientFn = async (features, labels, key) => {
    const [graph, trainSession] = [this.trainGraph, this.trainSession];
    if (!graph || !trainSession) throw new Error('this ONNX tail was created with training: false');
    const count = labels.length;
    const feeds = this.weightFeeds(graph);
    feeds['features'] = this.rowsOf(features, count);
    feeds['labels'] = new ort.Tensor('float32', labels, [count, 1]);
    feeds['inv_count'] = new ort.Tensor('float32', new Float32Array([1 / count]), [1]);
    const rng = key === undefined ? this.rng : new Rng(key);
    for (const dropout of graph.dropouts) {
      feeds[dropout.input] = new ort.Tensor('float32', dropoutMask(rng, count, dropout.width, dropout.rate), [count, dropout.width]);
    }
    const result = await trainSession.run(feeds);
    const loss = (result['loss']!.data as Float32Array)[0]!;
    const gradients = graph.gradients.map(({ output, param }) => tf.tensor(param.fromOnnx(result[output]!.data as Float32Array), param.variable.shape));
    for (const tensor of Object.values(result)) tensor.dispose();
    return { loss, gradients };
  };

  /** The model's outputs (logits, or features) in inference mode (dropout off), flat, in input order. */
  async outputs(features: Float32Array, batchSize = 256): Promise<Float32Array> {
    const per = this.featureShape.reduce((a, b) => a * b, 1);
    const count = features.length / per;
    const width = this.inferGraph.width;
    const out = new Float32Array(count * width);
    // A trained tail's weights change between calls; a forward-only one's do not.
    const weights = this.trainGraph ? this.weightFeeds(this.inferGraph) : (this.frozenWeights ??= this.weightFeeds(this.inferGraph));
    for (let start = 0; start < count; start += batchSize) {
      const n = Math.min(batchSize, count - start);
      const result = await this.inferSession.run({ ...weights, features: this.rowsOf(features.subarray(start * per, (start + n) * per), n) });
      out.set(result['output']!.data as Float32Array, start * width);
      result['output']!.dispose();
    }
    return out;
  }

  async dispose(): Promise<void> {
    await Promise.all([this.trainSession?.release(), this.inferSession.release()]);
  }
}

/** A tail model run forward (inference mode) over flat activations; `engine` says where it runs. */
export interface TailForward {
  engine: 'onnx' | 'tfjs';
  /** The model's outputs, flat, in input order. */
  run(activations: Float32Array): Promise<Float32Array>;
  dispose(): Promise<void>;
}

/**
 * ONNX Runtime when `engine` is 'onnx' and its graph covers every layer (several times faster than tfjs-wasm),
 * else tfjs; `map` is applied to each output value (e.g. the logit's sigmoid).
 */
export async function tailForward(
  model: tfl.LayersModel,
  shape: readonly number[],
  options: { engine: 'onnx' | 'wasm'; map?: (value: number) => number },
): Promise<TailForward> {
  const map = options.map;
  if (options.engine === 'onnx') {
    try {
      const tail = await OnnxTail.create(model, [...shape], { training: false });
      return {
        engine: 'onnx',
        run: async (activations) => {
          const out = await tail.outputs(activations);
          return map ? out.map(map) : out;
        },
        dispose: () => tail.dispose(),
      };
    } catch (error) {
      if (!(error instanceof UnsupportedTailError)) throw error;
    }
  }
  return {
    engine: 'tfjs',
    run: async (activations) => {
      const out = runTailBatched(model, activations, shape);
      return map ? out.map(map) : out;
    },
    dispose: async () => {},
  };
}
