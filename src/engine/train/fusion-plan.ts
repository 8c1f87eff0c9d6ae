// Finds chains "Conv2D | DepthwiseConv2D -> BatchNormalization -> ReLU | ReLU6" in a tail model that can run as
// one fused block (see fused-block.ts). Anything unusual (shared layers, dilations, other activations,
// branching intermediates) is left to the layer-by-layer path.
import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { FusedActivation } from '../kernels/activation-grad.ts';
import { foldBatchNorm } from './fused-block.ts';
import type { BatchNormWeights, FoldedWeights, FusedBlockSpec } from './fused-block.ts';

type Layer = tfl.layers.Layer;
type Config = Record<string, unknown>;

export type FusionGroup = {
  spec: FusedBlockSpec;
  /** Layers after the convolution whose work the block does; their own nodes are skipped. */
  absorbed: Layer[];
  /** Symbolic output of the last absorbed layer (or of the convolution). */
  outputId: number;
  /** Folded filter and bias, built with differentiable ops on the layers' variables. */
  weights: () => FoldedWeights;
};

export type FusionPlan = Map<Layer, FusionGroup>;

function pair(value: unknown): [number, number] | undefined {
  if (typeof value === 'number') return [value, value];
  if (Array.isArray(value) && value.length === 2 && value.every((v) => typeof v === 'number')) return value as [number, number];
  return undefined;
}

function activationOf(layer: Layer): FusedActivation | undefined {
  const config = layer.getConfig() as Config;
  const name = layer.getClassName();
  if (name === 'ReLU') {
    if (config['maxValue'] == null) return 'relu';
    return config['maxValue'] === 6 ? 'relu6' : undefined;
  }
  if (name === 'Activation') {
    const activation = config['activation'];
    return activation === 'relu' || activation === 'relu6' || activation === 'linear' ? activation : undefined;
  }
  return undefined;
}

/** The only layer reading this layer's output, if it has exactly one reader inside the model. */
function soleConsumer(layer: Layer, members: Set<Layer>): Layer | undefined {
  if (layer.inboundNodes.length !== 1 || layer.outboundNodes.length !== 1) return undefined;
  const next = layer.outboundNodes[0]!.outboundLayer;
  return next.inboundNodes.length === 1 && next.inboundNodes[0]!.inputTensors.length === 1 && members.has(next) ? next : undefined;
}

/** A layer's weight by its Keras name (`kernel`, `bias`, ...), matched on the name before tfjs's uniquifying suffix. */
export function layerWeight(layer: Layer, suffix: string): tfl.LayerVariable | undefined {
  return layer.weights.find((w) => w.originalName.endsWith(`/${suffix}`) || w.originalName === suffix);
}

function variable(layer: Layer, suffix: string): tf.Tensor | undefined {
  return layerWeight(layer, suffix)?.read();
}

function batchNormWeights(bn: Layer): BatchNormWeights | undefined {
  const config = bn.getConfig() as Config;
  const axis = config['axis'];
  if (axis !== -1 && axis !== 3 && !(Array.isArray(axis) && axis.length === 1 && (axis[0] === -1 || axis[0] === 3))) return undefined;
  const movingMean = variable(bn, 'moving_mean');
  const movingVariance = variable(bn, 'moving_variance');
  if (!movingMean || !movingVariance) return undefined;
  return {
    gamma: config['scale'] === false ? undefined : variable(bn, 'gamma'),
    beta: config['center'] === false ? undefined : variable(bn, 'beta'),
    movingMean, movingVariance, epsilon: Number(config['epsilon'] ?? 1e-3),
  };
}

function planGroup(conv: Layer, members: Set<Layer>): FusionGroup | undefined {
  const className = conv.getClassName();
  if (className !== 'Conv2D' && className !== 'DepthwiseConv2D') return undefined;
  const config = conv.getConfig() as Config;
  const strides = pair(config['strides']);
  const dilations = pair(config['dilationRate'] ?? 1);
  const padding = config['padding'];
  if (!strides || !dilations || dilations[0] !== 1 || dilations[1] !== 1) return undefined;
  if (padding !== 'same' && padding !== 'valid') return undefined;
  if ((config['dataFormat'] ?? 'channelsLast') !== 'channelsLast' || conv.inboundNodes.length !== 1) return undefined;
  const ownActivation = config['activation'] ?? 'linear';
  if (ownActivation !== 'linear' && ownActivation !== 'relu' && ownActivation !== 'relu6') return undefined;
  const depthwise = className === 'DepthwiseConv2D';
  const kernel = variable(conv, depthwise ? 'depthwise_kernel' : 'kernel');
  if (!kernel) return undefined;
  const bias = config['useBias'] ? variable(conv, 'bias') : undefined;

  const absorbed: Layer[] = [];
  let last = conv;
  let bnWeights: BatchNormWeights | undefined;
  let activation: FusedActivation = ownActivation;
  if (ownActivation === 'linear') {
    const bn = soleConsumer(last, members);
    if (bn?.getClassName() === 'BatchNormalization' && (bnWeights = batchNormWeights(bn))) {
      absorbed.push(bn);
      last = bn;
    }
    const act = soleConsumer(last, members);
    const actKind = act ? activationOf(act) : undefined;
    if (act && actKind) {
      absorbed.push(act);
      last = act;
      activation = actKind;
    }
  }
  const outputs = last.inboundNodes[0]!.outputTensors;
  if (outputs.length !== 1) return undefined;
  const bnFinal = bnWeights;
  return {
    spec: { depthwise, strides, padding, activation },
    absorbed,
    outputId: outputs[0]!.id,
    weights: () => foldBatchNorm(kernel as tf.Tensor4D, bias as tf.Tensor1D | undefined, bnFinal, depthwise),
  };
}

/** Fusion groups keyed by their convolution layer. */
export function planFusion(model: tfl.LayersModel): FusionPlan {
  const members = new Set(model.layers);
  const plan: FusionPlan = new Map();
  for (const layer of model.layers) {
    const group = planGroup(layer, members);
    if (group) plan.set(layer, group);
  }
  return plan;
}
