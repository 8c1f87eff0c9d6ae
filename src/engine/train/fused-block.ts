// A convolution (regular or depthwise) followed by an inference-mode BatchNormalization and a ReLU / ReLU6,
// run as one fused wasm kernel with a hand-written gradient. BatchNorm is folded into the filter and bias
// with differentiable tf ops on the small weight tensors, so gamma, beta, kernel and bias still get their
// gradients from autodiff, while the big activations see one forward kernel and three backward passes.
import * as tf from '@tensorflow/tfjs-core';
import type { NamedAttrMap } from '@tensorflow/tfjs-core';
import { fusedActivationGrad } from '../kernels/activation-grad.ts';
import type { FusedActivation } from '../kernels/activation-grad.ts';

export type FusedBlockSpec = {
  depthwise: boolean;
  strides: [number, number];
  padding: 'same' | 'valid';
  activation: FusedActivation;
};

export type FoldedWeights = { filter: tf.Tensor4D; bias: tf.Tensor1D };

export type BatchNormWeights = { gamma?: tf.Tensor; beta?: tf.Tensor; movingMean: tf.Tensor; movingVariance: tf.Tensor; epsilon: number };

/** filter * s and (bias - mean) * s + beta with s = gamma / sqrt(variance + epsilon), per output channel. */
export function foldBatchNorm(kernel: tf.Tensor4D, bias: tf.Tensor1D | undefined, bn: BatchNormWeights | undefined, depthwise: boolean): FoldedWeights {
  const outChannels = depthwise ? kernel.shape[2] * kernel.shape[3] : kernel.shape[3];
  if (!bn) return { filter: kernel, bias: bias ?? tf.zeros([outChannels]) };
  let scale = tf.rsqrt(tf.add(bn.movingVariance, bn.epsilon));
  if (bn.gamma) scale = tf.mul(scale, bn.gamma);
  const filterScale = depthwise ? tf.reshape(scale, [kernel.shape[2], kernel.shape[3]]) : scale;
  const filter = tf.mul(kernel, filterScale) as tf.Tensor4D;
  const centred = bias ? tf.sub(bias, bn.movingMean) : tf.neg(bn.movingMean);
  let foldedBias = tf.mul(centred, scale) as tf.Tensor1D;
  if (bn.beta) foldedBias = tf.add(foldedBias, bn.beta);
  return { filter, bias: foldedBias };
}

function convAttrs(spec: FusedBlockSpec): NamedAttrMap {
  return { strides: spec.strides, pad: spec.padding, dataFormat: 'NHWC', dilations: [1, 1] } as unknown as NamedAttrMap;
}

/**
 * y = activation(conv(x, filter) + bias). When `inputIsConstant` (x is the cached trunk activation), its
 * gradient is never computed.
 */
export function fusedConvBlock(x: tf.Tensor4D, weights: FoldedWeights, spec: FusedBlockSpec, inputIsConstant: boolean): tf.Tensor4D {
  const attrs = convAttrs(spec);
  const forwardKernel = spec.depthwise ? tf.FusedDepthwiseConv2D : tf.FusedConv2D;
  const filterGradKernel = spec.depthwise ? tf.DepthwiseConv2dNativeBackpropFilter : tf.Conv2DBackpropFilter;
  const inputGradKernel = spec.depthwise ? tf.DepthwiseConv2dNativeBackpropInput : tf.Conv2DBackpropInput;
  const run = (input: tf.Tensor4D, filter: tf.Tensor4D, bias: tf.Tensor1D, save: (tensors: tf.Tensor[]) => void) => {
    const y = tf.engine().runKernel(forwardKernel, { x: input, filter, bias }, { ...attrs, activation: spec.activation, leakyreluAlpha: 0 } as unknown as NamedAttrMap) as tf.Tensor4D;
    save([input, filter, y]);
    const gradFunc = (dy: tf.Tensor4D, saved: tf.Tensor[]) => {
      const [savedInput, savedFilter, savedY] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
      const [masked, biasGrad] = fusedActivationGrad(dy, savedY, spec.activation);
      const filterGrad = tf.engine().runKernel(filterGradKernel, { x: savedInput, dy: masked }, { ...attrs, filterShape: savedFilter.shape } as unknown as NamedAttrMap) as tf.Tensor4D;
      const grads: tf.Tensor[] = [filterGrad, biasGrad];
      if (!inputIsConstant) {
        grads.unshift(tf.engine().runKernel(inputGradKernel, { dy: masked, filter: savedFilter }, { ...attrs, inputShape: savedInput.shape } as unknown as NamedAttrMap) as tf.Tensor4D);
      }
      masked.dispose();
      return grads;
    };
    return { value: y, gradFunc };
  };
  if (inputIsConstant) {
    const block = tf.customGrad((filter, bias, save) => run(x, filter as tf.Tensor4D, bias as tf.Tensor1D, save as never));
    return block(weights.filter, weights.bias) as tf.Tensor4D;
  }
  const block = tf.customGrad((input, filter, bias, save) => run(input as tf.Tensor4D, filter as tf.Tensor4D, bias as tf.Tensor1D, save as never));
  return block(x, weights.filter, weights.bias) as tf.Tensor4D;
}
