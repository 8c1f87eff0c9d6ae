// Shared plumbing for kernels that run on the wasm backend: direct views of the wasm heap and calls into the
// backend's own (XNNPACK-backed) kernels without going through the engine.
import * as tf from '@tensorflow/tfjs-core';
import type { KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

export type { BackendWasm };

/** A kernel function as the engine calls it, typed for the wasm backend. */
export type WasmKernelArgs = {
  inputs: Record<string, TensorInfo | undefined>;
  backend: BackendWasm;
  attrs?: NamedAttrMap;
};

/**
 * A float32 view of a tensor's storage on the wasm heap. Take views only after the last allocation of the
 * kernel: growing the heap detaches every earlier view.
 */
export function heapFloats(backend: BackendWasm, info: TensorInfo): Float32Array {
  return backend.typedArrayFromHeap(info) as Float32Array;
}

/** The same storage under another shape: a free reshape for handing tensors to other wasm kernels. */
export function withShape(info: TensorInfo, shape: number[]): TensorInfo {
  return { dataId: info.dataId, shape, dtype: info.dtype };
}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** A kernel of the wasm backend as registered before our overrides, so it can be called from them. */
export function originalWasmKernel(name: string): KernelFunc {
  const config = tf.getKernel(name, 'wasm');
  if (!config) throw new Error(`the wasm backend has no ${name} kernel; is @tensorflow/tfjs-backend-wasm loaded?`);
  return config.kernelFunc;
}

export function callKernel(
  kernel: KernelFunc,
  backend: BackendWasm,
  inputs: Record<string, TensorInfo>,
  attrs: NamedAttrMap,
): TensorInfo {
  const result = kernel({ inputs, backend, attrs } as Parameters<KernelFunc>[0]);
  if (Array.isArray(result)) throw new Error('expected a kernel with one output');
  return result;
}

export function dispose(backend: BackendWasm, ...infos: TensorInfo[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}

/** Transposes the last two axes of a rank-3 [batch, rows, cols] tensor with the wasm Transpose kernel. */
export function transposeLastTwo(backend: BackendWasm, transpose: KernelFunc, x: TensorInfo): TensorInfo {
  const [batch, rows, cols] = x.shape as [number, number, number];
  const out = callKernel(transpose, backend, { x: withShape(x, [batch, rows, cols]) }, { perm: [0, 2, 1] });
  return withShape(out, [batch, cols, rows]);
}
