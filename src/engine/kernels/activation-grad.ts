// Backward of a fused "convolution + bias + activation" in one pass over memory: masks the output gradient
// by where the activation was not saturated (from the saved output y) and sums it per channel for the bias.
// Unfused, tfjs spends five elementwise wasm ops and a reduction on this.
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from './heap.ts';
import { heapFloats } from './heap.ts';

export const FUSED_ACTIVATION_GRAD = 'CovidCtFusedActivationGrad';
export type FusedActivation = 'linear' | 'relu' | 'relu6';

function maskAndSum(dy: Float32Array, y: Float32Array, activation: FusedActivation, masked: Float32Array, channelSums: Float32Array): void {
  const channels = channelSums.length;
  // Float64 partial sums: a bias gradient adds up every pixel of the batch.
  const sums = new Float64Array(channels);
  const upper = activation === 'relu6' ? 6 : activation === 'relu' ? Infinity : Infinity;
  const lower = activation === 'linear' ? -Infinity : 0;
  for (let offset = 0; offset < dy.length; offset += channels) {
    for (let c = 0; c < channels; c++) {
      const v = y[offset + c]!;
      const g = v > lower && v < upper ? dy[offset + c]! : 0;
      masked[offset + c] = g;
      sums[c] = sums[c]! + g;
    }
  }
  for (let c = 0; c < channels; c++) channelSums[c] = sums[c]!;
}

function checkActivation(activation: unknown): FusedActivation {
  if (activation !== 'linear' && activation !== 'relu' && activation !== 'relu6') {
    throw new Error(`${FUSED_ACTIVATION_GRAD}: activation must be linear, relu or relu6, got ${String(activation)}`);
  }
  return activation;
}

const wasmKernel = ((args: { inputs: { dy: TensorInfo; y: TensorInfo }; backend: BackendWasm; attrs: { activation: FusedActivation } }) => {
  const { inputs, backend, attrs } = args;
  const activation = checkActivation(attrs.activation);
  const channels = inputs.dy.shape[inputs.dy.shape.length - 1]!;
  const masked = backend.makeOutput(inputs.dy.shape, 'float32');
  const sums = backend.makeOutput([channels], 'float32');
  maskAndSum(heapFloats(backend, inputs.dy), heapFloats(backend, inputs.y), activation, heapFloats(backend, masked), heapFloats(backend, sums));
  return [masked, sums];
}) as unknown as KernelFunc;

type CpuBackend = { data: { get(id: unknown): { values: Float32Array } }; makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): TensorInfo };
const cpuKernel = ((args: { inputs: { dy: TensorInfo; y: TensorInfo }; backend: CpuBackend; attrs: { activation: FusedActivation } }) => {
  const { inputs, backend, attrs } = args;
  const activation = checkActivation(attrs.activation);
  const channels = inputs.dy.shape[inputs.dy.shape.length - 1]!;
  const dy = backend.data.get(inputs.dy.dataId).values;
  const masked = new Float32Array(dy.length);
  const sums = new Float32Array(channels);
  maskAndSum(dy, backend.data.get(inputs.y.dataId).values, activation, masked, sums);
  return [backend.makeTensorInfo(inputs.dy.shape, 'float32', masked), backend.makeTensorInfo([channels], 'float32', sums)];
}) as unknown as KernelFunc;

/** Registers the kernel for the wasm and cpu backends (idempotent). */
export function registerFusedActivationGrad(): void {
  for (const [backendName, kernelFunc] of [['wasm', wasmKernel], ['cpu', cpuKernel]] as const) {
    if (!tf.getKernel(FUSED_ACTIVATION_GRAD, backendName)) {
      tf.registerKernel({ kernelName: FUSED_ACTIVATION_GRAD, backendName, kernelFunc } as KernelConfig);
    }
  }
}

/** [dy masked by the activation, per-channel sum of it]. */
export function fusedActivationGrad(dy: tf.Tensor, y: tf.Tensor, activation: FusedActivation): [tf.Tensor, tf.Tensor1D] {
  registerFusedActivationGrad();
  return tf.engine().runKernel(FUSED_ACTIVATION_GRAD, { dy, y }, { activation }) as unknown as [tf.Tensor, tf.Tensor1D];
}
