/** IR -> tfjs-layers model (float32 weights, same layer names), for training and as the reference forward pass. */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { Graph, Op } from './ir.ts';
import { inferShapes } from './ir.ts';
import { KerasNormalization } from './efficientnet/normalization.ts';

type Symbolic = tfl.SymbolicTensor;

function apply(layer: tfl.layers.Layer, input: Symbolic | Symbolic[]): Symbolic {
  return layer.apply(input) as Symbolic;
}

/**
 * Builds a tfjs-layers model computing `graph`. Conv, depthwise and dense layers carry the IR op's name;
 * an activation or shape fix-up that tfjs needs as a separate layer gets the op's name and a suffix.
 */
export function buildTfjsLayersModel(graph: Graph, name = 'backbone'): tfl.LayersModel {
  inferShapes(graph);
  const input = tfl.input({ shape: graph.inputShape, name: graph.input, dtype: 'float32' });
  const tensors = new Map<string, Symbolic>([[graph.input, input]]);
  const pending: Array<{ layer: tfl.layers.Layer; weights: Array<{ values: Float32Array; shape: number[] }> }> = [];
  for (const op of graph.ops) {
    const x = op.inputs.map((n) => tensors.get(n)!);
    tensors.set(op.name, buildLayer(op, x, pending));
  }
  const model = tfl.model({ inputs: input, outputs: tensors.get(graph.output)!, name });
  for (const { layer, weights } of pending) {
    const values = weights.map((w) => tf.tensor(w.values, w.shape, 'float32'));
    layer.setWeights(values);
    tf.dispose(values);
  }
  return model;
}

function buildLayer(
  op: Op,
  x: Symbolic[],
  pending: Array<{ layer: tfl.layers.Layer; weights: Array<{ values: Float32Array; shape: number[] }> }>,
): Symbolic {
  const first = x[0]!;
  const name = op.name;
  const withWeights = (layer: tfl.layers.Layer, weights: Array<{ values: Float32Array; shape: number[] }>): tfl.layers.Layer => {
    pending.push({ layer, weights });
    return layer;
  };
  switch (op.kind) {
    case 'affine':
      return apply(tfl.layers.rescaling({ scale: op.scale, offset: op.offset, name }), first);
    case 'conv2d': {
      const [kh, kw, , filters] = op.kernelShape;
      const layer = tfl.layers.conv2d({
        name, filters, kernelSize: [kh, kw], strides: op.strides, dilationRate: op.dilations, padding: op.padding,
        activation: op.activation, useBias: op.bias !== null,
      });
      const weights = [{ values: op.kernel, shape: [...op.kernelShape] }];
      if (op.bias) weights.push({ values: op.bias, shape: [filters] });
      return apply(withWeights(layer, weights), first);
    }
    case 'depthwiseConv2d': {
      const [kh, kw, channels, multiplier] = op.kernelShape;
      const layer = tfl.layers.depthwiseConv2d({
        name, kernelSize: [kh, kw], depthMultiplier: multiplier, strides: op.strides, dilationRate: op.dilations,
        padding: op.padding, activation: op.activation, useBias: op.bias !== null,
      });
      const weights = [{ values: op.kernel, shape: [...op.kernelShape] }];
      if (op.bias) weights.push({ values: op.bias, shape: [channels * multiplier] });
      return apply(withWeights(layer, weights), first);
    }
    case 'batchNorm': {
      const layer = tfl.layers.batchNormalization({ name, epsilon: op.epsilon, axis: -1 });
      const shape = [op.gamma.length];
      return apply(withWeights(layer, [op.gamma, op.beta, op.mean, op.variance].map((values) => ({ values, shape }))), first);
    }
    case 'add': {
      if (op.activation === 'linear') return apply(tfl.layers.add({ name }), x);
      const sum = apply(tfl.layers.add({ name: `${name}_sum` }), x);
      return apply(tfl.layers.activation({ name, activation: op.activation }), sum);
    }
    case 'activation':
      return apply(tfl.layers.activation({ name, activation: op.activation }), first);
    case 'averagePool2d':
      return apply(tfl.layers.averagePooling2d({ name, poolSize: op.poolSize, strides: op.strides, padding: op.padding }), first);
    case 'globalAveragePool': {
      if (!op.keepDims) return apply(tfl.layers.globalAveragePooling2d({ name }), first);
      const pooled = apply(tfl.layers.globalAveragePooling2d({ name: `${name}_pool` }), first);
      const channels = pooled.shape[1] as number;
      return apply(tfl.layers.reshape({ name, targetShape: [1, 1, channels] }), pooled);
    }
    case 'reshape':
      return apply(tfl.layers.reshape({ name, targetShape: op.targetShape }), first);
    case 'dense': {
      const units = op.kernelShape[1];
      const layer = tfl.layers.dense({ name, units, activation: op.activation, useBias: op.bias !== null });
      const weights = [{ values: op.kernel, shape: [...op.kernelShape] }];
      if (op.bias) weights.push({ values: op.bias, shape: [units] });
      return apply(withWeights(layer, weights), first);
    }
    case 'softmax':
      return apply(tfl.layers.softmax({ name, axis: -1 }), first);
    case 'pad':
      return apply(tfl.layers.zeroPadding2d({ name, padding: op.padding }), first);
    case 'dropConnect': {
      const noiseShape = [null, 1, 1, 1] as unknown as number[]; // tfjs fills null from the input, as Keras does
      return apply(tfl.layers.dropout({ name, rate: op.rate, noiseShape }), first);
    }
    case 'multiply':
      return apply(tfl.layers.multiply({ name }), x);
    case 'normalize': {
      const shape = [op.mean.length];
      const weights = [{ values: op.mean, shape }, { values: op.variance, shape }, { values: new Float32Array(1), shape: [] }];
      return apply(withWeights(new KerasNormalization({ name, axis: -1 }), weights), first);
    }
  }
}
