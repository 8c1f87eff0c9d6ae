// One forward/backward pass of the tail on a batch of cached trunk activations.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { runTail } from './tail-graph.ts';
import type { RunTailOptions } from './tail-graph.ts';

/** The tail's trainable variables, in model.trainableWeights order. */
export function trainableVariables(model: tfl.LayersModel): tf.Variable[] {
  return model.trainableWeights.map((weight) => weight.read() as tf.Variable);
}

/** Rejects tails that cannot be trained from logits: several outputs, more than one unit, or a final sigmoid. */
export function validateTailModel(model: tfl.LayersModel, featureShape: number[]): void {
  if (model.inputs.length !== 1) throw new Error(`the tail model must have one input, it has ${model.inputs.length}`);
  const inputShape = model.inputs[0]!.shape.slice(1);
  if (JSON.stringify(inputShape) !== JSON.stringify(featureShape)) {
    throw new Error(`the tail model takes inputs of shape ${JSON.stringify(inputShape)}, the features have ${JSON.stringify(featureShape)}`);
  }
  const outputShape = model.outputs[0]?.shape;
  if (model.outputs.length !== 1 || outputShape?.length !== 2 || outputShape[1] !== 1) {
    throw new Error(`the tail model must output one logit per example (shape [null, 1]), it outputs ${JSON.stringify(outputShape)}`);
  }
  const last = model.outputs[0]!.sourceLayer.getConfig();
  if (last['activation'] !== undefined && last['activation'] !== 'linear') {
    throw new Error(`the tail model's last layer must output logits (activation 'linear'), it has '${String(last['activation'])}'`);
  }
  if (model.trainableWeights.length === 0) throw new Error('the tail model has no trainable weights');
}

/**
 * Mean binary cross-entropy of the batch, computed from logits in one step (numerically stable, no sigmoid
 * first), and its gradient for each variable. The caller disposes the returned tensors.
 */
export function tailGradients(
  model: tfl.LayersModel,
  variables: tf.Variable[],
  features: tf.Tensor,
  labels: tf.Tensor1D,
  options: RunTailOptions = {},
): { loss: tf.Scalar; gradients: tf.Tensor[] } {
  const { value, grads } = tf.variableGrads(() => {
    const logits = runTail(model, features, true, options);
    return tf.losses.sigmoidCrossEntropy(tf.reshape(labels, [-1, 1]), logits) as tf.Scalar;
  }, variables);
  return { loss: value, gradients: variables.map((variable) => grads[variable.name]!) };
}

/** Logits of the tail in inference mode (dropout off), for evaluation. */
export function tailLogits(model: tfl.LayersModel, features: tf.Tensor): tf.Tensor {
  return tf.tidy(() => runTail(model, features, false));
}

/**
 * Gradients of one batch, on this thread, shared with workers or on ONNX Runtime; the caller disposes them.
 * `key` seeds the batch's dropout masks where the implementation draws them itself.
 */
export type BatchGradientFn = (features: Float32Array, labels: Float32Array, key?: number) => Promise<{ loss: number; gradients: tf.Tensor[] }>;

export function localBatchGradients(model: tfl.LayersModel, featureShape: number[], options: RunTailOptions = {}): BatchGradientFn {
  const variables = trainableVariables(model);
  return async (features, labels) => {
    const x = tf.tensor(features, [labels.length, ...featureShape]);
    const y = tf.tensor1d(labels);
    const { loss, gradients } = tailGradients(model, variables, x, y, options);
    tf.dispose([x, y]);
    const value = (await loss.data())[0]!;
    loss.dispose();
    return { loss: value, gradients };
  };
}
