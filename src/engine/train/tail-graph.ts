// Runs a tfjs-layers model layer by layer so each layer gets its own training flag: BatchNormalization always
// in inference mode (its moving statistics come from the pretrained trunk; batch statistics of small CT batches
// would destroy them), dropout and the rest in training mode while training. Convolution + BatchNorm + ReLU
// chains run as fused blocks unless `fuse` is false.
import * as tfc from '@tensorflow/tfjs-core';
import type * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { fusedConvBlock } from './fused-block.ts';
import { planFusion } from './fusion-plan.ts';
import type { FusionPlan } from './fusion-plan.ts';

type SymbolicId = number;

export type RunTailOptions = { fuse?: boolean };

const plans = new WeakMap<tfl.LayersModel, FusionPlan>();

function fusionPlan(model: tfl.LayersModel): FusionPlan {
  let plan = plans.get(model);
  if (!plan) {
    plan = planFusion(model);
    plans.set(model, plan);
  }
  return plan;
}

function isModel(layer: unknown): layer is tfl.LayersModel {
  return layer instanceof tfl.LayersModel;
}

function layerTraining(layer: { getClassName(): string }, training: boolean): boolean {
  return layer.getClassName() === 'BatchNormalization' ? false : training;
}

/** Applies `model` to concrete inputs with per-layer training flags (nested models included). */
export function runTail(model: tfl.LayersModel, inputs: tf.Tensor | tf.Tensor[], training: boolean, options: RunTailOptions = {}): tf.Tensor {
  const given = Array.isArray(inputs) ? inputs : [inputs];
  if (given.length !== model.inputs.length) {
    throw new Error(`the tail model takes ${model.inputs.length} input(s), got ${given.length}`);
  }
  const plan = options.fuse === false ? new Map() as FusionPlan : fusionPlan(model);
  const absorbed = new Set([...plan.values()].flatMap((group) => group.absorbed));
  const constantIds = new Set(model.inputs.map((symbolic) => symbolic.id));
  const values = new Map<SymbolicId, tf.Tensor>();
  model.inputs.forEach((symbolic, i) => values.set(symbolic.id, given[i]!));
  for (const layer of model.layers) {
    if (layer.getClassName() === 'InputLayer' || absorbed.has(layer)) continue;
    const group = plan.get(layer);
    if (group) {
      const inputId = layer.inboundNodes[0]!.inputTensors[0]!.id;
      const input = values.get(inputId);
      if (!input) continue;
      values.set(group.outputId, fusedConvBlock(input as tf.Tensor4D, group.weights(), group.spec, constantIds.has(inputId)));
      continue;
    }
    for (const node of layer.inboundNodes) {
      const nodeInputs = node.inputTensors.map((symbolic) => values.get(symbolic.id));
      // A node whose inputs are not ours belongs to another graph that shares this layer.
      if (nodeInputs.length === 0 || nodeInputs.some((t) => t === undefined)) continue;
      const concrete = nodeInputs as tf.Tensor[];
      const argument = concrete.length === 1 ? concrete[0]! : concrete;
      const output = isModel(layer)
        ? runTail(layer, argument, training, options)
        : (layer.apply(argument, { training: layerTraining(layer, training) }) as tf.Tensor | tf.Tensor[]);
      const outputs = Array.isArray(output) ? output : [output];
      node.outputTensors.forEach((symbolic, i) => values.set(symbolic.id, outputs[i]!));
    }
  }
  if (model.outputs.length !== 1) throw new Error(`the tail model must have one output, it has ${model.outputs.length}`);
  const result = values.get(model.outputs[0]!.id);
  if (!result) throw new Error('the tail model output was not computed: is the graph connected to its input?');
  return result;
}

/**
 * Runs `model` in inference mode over flat activations (examples x prod(shape)), `batchSize` examples at a time,
 * and returns its outputs flattened in input order; `map` transforms each batch's output (e.g. a sigmoid).
 */
export function runTailBatched(
  model: tfl.LayersModel,
  activations: Float32Array,
  shape: readonly number[],
  options: { batchSize?: number; map?: (output: tf.Tensor) => tf.Tensor } = {},
): Float32Array {
  const batchSize = options.batchSize ?? 64;
  const per = shape.reduce((a, b) => a * b, 1);
  const n = activations.length / per;
  const width = (model.outputs[0]!.shape.slice(1) as number[]).reduce((a, b) => a * b, 1);
  const out = new Float32Array(n * width);
  for (let start = 0; start < n; start += batchSize) {
    const count = Math.min(batchSize, n - start);
    const values = tfc.tidy(() => {
      const output = runTail(model, tfc.tensor(activations.subarray(start * per, (start + count) * per), [count, ...shape]), false);
      return (options.map ? options.map(output) : output).dataSync();
    });
    out.set(values, start * width);
  }
  return out;
}
