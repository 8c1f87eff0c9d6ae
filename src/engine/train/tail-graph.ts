// Runs a tfjs-layers model layer by layer so each layer gets its own training flag: BatchNormalization always
// in inference mode (its moving statistics come from the pretrained trunk; batch statistics of small CT batches
// would destroy them), dropout and the rest in training mode while training.
import type * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

type SymbolicId = number;

function isModel(layer: unknown): layer is tfl.LayersModel {
  return layer instanceof tfl.LayersModel;
}

function layerTraining(layer: { getClassName(): string }, training: boolean): boolean {
  return layer.getClassName() === 'BatchNormalization' ? false : training;
}

/** Applies `model` to concrete inputs with per-layer training flags (nested models included). */
export function runTail(model: tfl.LayersModel, inputs: tf.Tensor | tf.Tensor[], training: boolean): tf.Tensor {
  const given = Array.isArray(inputs) ? inputs : [inputs];
  if (given.length !== model.inputs.length) {
    throw new Error(`the tail model takes ${model.inputs.length} input(s), got ${given.length}`);
  }
  const values = new Map<SymbolicId, tf.Tensor>();
  model.inputs.forEach((symbolic, i) => values.set(symbolic.id, given[i]!));
  for (const layer of model.layers) {
    if (layer.getClassName() === 'InputLayer') continue;
    for (const node of layer.inboundNodes) {
      const nodeInputs = node.inputTensors.map((symbolic) => values.get(symbolic.id));
      // A node whose inputs are not ours belongs to another graph that shares this layer.
      if (nodeInputs.length === 0 || nodeInputs.some((t) => t === undefined)) continue;
      const concrete = nodeInputs as tf.Tensor[];
      const argument = concrete.length === 1 ? concrete[0]! : concrete;
      const output = isModel(layer)
        ? runTail(layer, argument, training)
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
