/** tfjs layers model -> engine IR, for the layer types of MobileNet- and EfficientNet-style CNNs. */
import type * as tfl from '@tensorflow/tfjs-layers';
import type { Activation, Graph, Op, Padding } from './ir.ts';
import { inferShapes } from './ir.ts';

export class UnsupportedLayerError extends Error {
  override name = 'UnsupportedLayerError';
}

type Config = Record<string, unknown>;

function pair(value: unknown, fallback: number): [number, number] {
  if (value === undefined || value === null) return [fallback, fallback];
  if (typeof value === 'number') return [value, value];
  const [a, b] = value as number[];
  return [a ?? fallback, b ?? a ?? fallback];
}

/** Converts a loaded layers model. Weights are copied out of the tensors, so the model can be disposed after. */
export function importTfjsLayersModel(model: tfl.LayersModel): Graph {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new UnsupportedLayerError(`model '${model.name}': one input and one output expected`);
  }
  const ops: Op[] = [];
  const alias = new Map<string, string>();
  const resolveName = (name: string): string => alias.get(name) ?? name;
  let inputName: string | undefined;
  let inputShape: number[] = [];
  for (const layer of model.layers) {
    const className = layer.getClassName();
    const config = layer.getConfig() as Config;
    const name = layer.name;
    if (layer.inboundNodes.length > 1) throw new UnsupportedLayerError(`layer '${name}' is shared; shared layers are not supported`);
    const inputs = (layer.inboundNodes[0]?.inboundLayers ?? []).map((l) => resolveName(l.name));
    const weights = (): Float32Array[] => layer.getWeights().map((w) => w.dataSync() as Float32Array).map((d) => new Float32Array(d));
    const activationOf = (where: string): Activation | 'softmax' => {
      const raw = (config.activation as string | undefined) ?? 'linear';
      if (raw === 'linear' || raw === 'relu' || raw === 'relu6' || raw === 'sigmoid' || raw === 'swish' || raw === 'softmax') return raw;
      throw new UnsupportedLayerError(`layer '${where}' (${className}): unsupported activation '${raw}'`);
    };
    const padding = (): Padding => {
      const p = (config.padding as string | undefined) ?? 'valid';
      if (p !== 'same' && p !== 'valid') throw new UnsupportedLayerError(`layer '${name}' (${className}): padding '${p}'`);
      return p;
    };
    if (config.dataFormat !== undefined && config.dataFormat !== 'channelsLast') {
      throw new UnsupportedLayerError(`layer '${name}' (${className}): dataFormat ${String(config.dataFormat)}; channelsLast only`);
    }
    /** Adds a layer whose activation may be softmax (not fusable): the layer itself then ends with a softmax op. */
    const withActivation = (make: (opName: string, activation: Activation) => Op): void => {
      const act = activationOf(name);
      if (act !== 'softmax') {
        ops.push(make(name, act));
        return;
      }
      ops.push(make(`${name}_linear`, 'linear'));
      ops.push({ kind: 'softmax', name, inputs: [`${name}_linear`] });
    };
    switch (className) {
      case 'InputLayer': {
        inputName = name;
        inputShape = ((config.batchInputShape as number[] | undefined) ?? []).slice(1);
        if (inputShape.some((d) => typeof d !== 'number')) throw new UnsupportedLayerError(`input '${name}' needs a fixed shape`);
        break;
      }
      case 'Conv2D': {
        const [kernel, bias] = weights();
        const [kh, kw] = pair(config.kernelSize, 1);
        const filters = config.filters as number;
        const cin = kernel!.length / (kh * kw * filters);
        withActivation((opName, activation) => ({
          kind: 'conv2d', name: opName, inputs, kernel: kernel!, kernelShape: [kh, kw, cin, filters], bias: bias ?? null,
          strides: pair(config.strides, 1), dilations: pair(config.dilationRate, 1), padding: padding(), activation,
        }));
        break;
      }
      case 'DepthwiseConv2D': {
        const [kernel, bias] = weights();
        const [kh, kw] = pair(config.kernelSize, 1);
        const multiplier = (config.depthMultiplier as number | undefined) ?? 1;
        const channels = kernel!.length / (kh * kw * multiplier);
        withActivation((opName, activation) => ({
          kind: 'depthwiseConv2d', name: opName, inputs, kernel: kernel!, kernelShape: [kh, kw, channels, multiplier],
          bias: bias ?? null, strides: pair(config.strides, 1), dilations: pair(config.dilationRate, 1), padding: padding(), activation,
        }));
        break;
      }
      case 'Dense': {
        const [kernel, bias] = weights();
        const units = config.units as number;
        withActivation((opName, activation) => ({
          kind: 'dense', name: opName, inputs, kernel: kernel!, kernelShape: [kernel!.length / units, units], bias: bias ?? null, activation,
        }));
        break;
      }
      case 'BatchNormalization': {
        const axis = config.axis as number | undefined;
        if (axis !== undefined && axis !== -1 && axis !== 3 && axis !== 1) {
          throw new UnsupportedLayerError(`layer '${name}' (BatchNormalization): axis ${axis}; the channel axis (-1) only`);
        }
        const w = weights();
        const channels = w[w.length - 1]!.length;
        const gamma = config.scale === false ? new Float32Array(channels).fill(1) : w.shift()!;
        const beta = config.center === false ? new Float32Array(channels) : w.shift()!;
        const [mean, variance] = w as [Float32Array, Float32Array];
        ops.push({ kind: 'batchNorm', name, inputs, gamma, beta, mean, variance, epsilon: (config.epsilon as number | undefined) ?? 1e-3 });
        break;
      }
      case 'Activation': {
        const act = activationOf(name);
        ops.push(act === 'softmax' ? { kind: 'softmax', name, inputs } : { kind: 'activation', name, inputs, activation: act });
        break;
      }
      case 'ReLU': {
        const max = config.maxValue as number | undefined | null;
        if (max !== undefined && max !== null && max !== 6) throw new UnsupportedLayerError(`layer '${name}' (ReLU): maxValue ${max}`);
        ops.push({ kind: 'activation', name, inputs, activation: max === 6 ? 'relu6' : 'relu' });
        break;
      }
      case 'Softmax':
        ops.push({ kind: 'softmax', name, inputs });
        break;
      case 'Add': {
        let previous = inputs[0]!;
        for (let i = 1; i < inputs.length; i++) {
          const opName = i === inputs.length - 1 ? name : `${name}_${i}`;
          ops.push({ kind: 'add', name: opName, inputs: [previous, inputs[i]!], activation: 'linear' });
          previous = opName;
        }
        break;
      }
      case 'GlobalAveragePooling2D':
        ops.push({ kind: 'globalAveragePool', name, inputs, keepDims: config.keepDims === true });
        break;
      case 'AveragePooling2D': {
        const poolSize = pair(config.poolSize, 2);
        ops.push({ kind: 'averagePool2d', name, inputs, poolSize, strides: pair(config.strides ?? poolSize, 1), padding: padding() });
        break;
      }
      case 'Rescaling':
        ops.push({ kind: 'affine', name, inputs, scale: config.scale as number, offset: (config.offset as number | undefined) ?? 0 });
        break;
      case 'Flatten':
      case 'Reshape': {
        const shape = (layer.outputShape as number[]).slice(1);
        ops.push({ kind: 'reshape', name, inputs, targetShape: shape });
        break;
      }
      case 'Dropout': {
        // Drop-connect (one draw per example) changes training, so it is kept; plain dropout is the identity here.
        const noise = config.noiseShape as Array<number | null> | undefined | null;
        const perExample = Array.isArray(noise) && noise.length === 4 && noise.slice(1).every((d) => d === 1);
        if (perExample && (config.rate as number) > 0) ops.push({ kind: 'dropConnect', name, inputs, rate: config.rate as number });
        else alias.set(name, inputs[0]!);
        break;
      }
      case 'SpatialDropout2D':
        alias.set(name, inputs[0]!);
        break;
      case 'ZeroPadding2D': {
        const padding = config.padding as [[number, number], [number, number]] | number | [number, number];
        const pads: [[number, number], [number, number]] =
          typeof padding === 'number' ? [[padding, padding], [padding, padding]]
            : typeof padding[0] === 'number' ? [[padding[0], padding[0]], [padding[1] as number, padding[1] as number]]
              : (padding as [[number, number], [number, number]]);
        ops.push({ kind: 'pad', name, inputs, padding: pads });
        break;
      }
      case 'Multiply': {
        let previous = inputs[0]!;
        for (let i = 1; i < inputs.length; i++) {
          const opName = i === inputs.length - 1 ? name : `${name}_${i}`;
          ops.push({ kind: 'multiply', name: opName, inputs: [previous, inputs[i]!] });
          previous = opName;
        }
        break;
      }
      case 'Normalization': {
        const axis = config.axis as number | undefined;
        const rank = (layer.outputShape as number[]).length;
        if (axis !== undefined && axis !== -1 && axis !== rank - 1) {
          throw new UnsupportedLayerError(`layer '${name}' (Normalization): axis ${axis}; the channel axis (-1) only`);
        }
        const [mean, variance] = weights();
        ops.push({ kind: 'normalize', name, inputs, mean: mean!, variance: variance! });
        break;
      }
      default:
        throw new UnsupportedLayerError(
          `layer '${name}': unsupported tfjs layer type ${className}; supported: InputLayer, Conv2D, DepthwiseConv2D, Dense, ` +
            'BatchNormalization, Activation, ReLU, Softmax, Add, Multiply, GlobalAveragePooling2D, AveragePooling2D, ZeroPadding2D, ' +
            'Rescaling, Normalization, Flatten, Reshape, Dropout',
        );
    }
  }
  if (!inputName) throw new UnsupportedLayerError(`model '${model.name}': no InputLayer`);
  const graph: Graph = { input: inputName, inputShape, ops, output: resolveName(model.outputs[0]!.sourceLayer.name) };
  inferShapes(graph);
  return graph;
}
