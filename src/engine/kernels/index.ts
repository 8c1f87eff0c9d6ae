// Registers on the wasm backend the kernels that training needs and the backend lacks or runs slowly.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import type { KernelConfig, KernelFunc } from '@tensorflow/tfjs-core';
import { conv2DBackpropFilter, conv2DBackpropInput } from './conv-backprop.ts';
import type { WasmKernels } from './conv-backprop.ts';
import { depthwiseBackpropFilter, depthwiseBackpropInput } from './depthwise-backprop.ts';
import { originalWasmKernel } from './heap.ts';
import { fastTile, untransposedMatMul } from './matmul-tile.ts';

export { initWasmBackend } from './wasm-backend.ts';

const BACKEND = 'wasm';
// Marks our configs so a second copy of this module (or a second call) does not wrap a wrapper.
const TRAINING_KERNEL = Symbol.for('covid-ct.trainingKernel');

function isOurs(name: string): boolean {
  const config = tf.getKernel(name, BACKEND) as (KernelConfig & { [TRAINING_KERNEL]?: true }) | undefined;
  return config?.[TRAINING_KERNEL] === true;
}

function replace(name: string, kernelFunc: KernelFunc): void {
  const previous = tf.getKernel(name, BACKEND);
  if (previous) tf.unregisterKernel(name, BACKEND);
  // Keep the original setup function: if the backend is not initialised yet, it must still bind its wasm
  // entry point, which our wrappers call through the original kernel function.
  const config = { kernelName: name, backendName: BACKEND, kernelFunc, setupFunc: previous?.setupFunc, [TRAINING_KERNEL]: true };
  tf.registerKernel(config as KernelConfig);
}

/**
 * Registers Conv2DBackpropFilter, DepthwiseConv2dNativeBackpropFilter, DepthwiseConv2dNativeBackpropInput and
 * fast Conv2DBackpropInput, BatchMatMul / _FusedMatMul (transposed operands) and Tile on the wasm backend.
 * Idempotent; may run before or after the backend is initialised.
 */
export function registerTrainingKernels(): void {
  if (isOurs(tf.Conv2DBackpropFilter)) return;
  const kernels: WasmKernels = {
    conv2d: originalWasmKernel(tf.Conv2D),
    depthwiseConv2d: originalWasmKernel(tf.DepthwiseConv2dNative),
    transpose: originalWasmKernel(tf.Transpose),
    batchMatMul: originalWasmKernel(tf.BatchMatMul),
  };
  const fusedMatMul = originalWasmKernel(tf._FusedMatMul);
  const tile = originalWasmKernel(tf.Tile);
  const withKernels = (f: (args: never, kernels: WasmKernels) => unknown): KernelFunc =>
    ((args: never) => f(args, kernels)) as unknown as KernelFunc;

  replace(tf.BatchMatMul, untransposedMatMul(kernels.batchMatMul, kernels.transpose));
  replace(tf._FusedMatMul, untransposedMatMul(fusedMatMul, kernels.transpose));
  replace(tf.Tile, fastTile(tile));
  replace(tf.Conv2DBackpropInput, withKernels(conv2DBackpropInput));
  replace(tf.DepthwiseConv2dNativeBackpropInput, withKernels(depthwiseBackpropInput));
  replace(tf.DepthwiseConv2dNativeBackpropFilter, withKernels(depthwiseBackpropFilter));
  // Last: its marker is what makes a second call a no-op.
  replace(tf.Conv2DBackpropFilter, withKernels(conv2DBackpropFilter));
}
