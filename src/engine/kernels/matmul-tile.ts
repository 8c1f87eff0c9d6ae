// Fast paths for two wasm kernels that are correct but slow: BatchMatMul with transposed operands (an explicit
// Transpose first is ~10x faster) and Tile (block copies on the heap instead of per-element index math).
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { dispose, sizeOf, transposeLastTwo, withShape } from './heap.ts';
import type { BackendWasm } from './heap.ts';

type MatMulAttrs = { transposeA: boolean; transposeB: boolean } & Record<string, unknown>;

/** Wraps a matrix-product kernel (BatchMatMul, _FusedMatMul) so it only ever sees untransposed operands. */
export function untransposedMatMul(original: KernelFunc, transpose: KernelFunc): KernelFunc {
  return ((args: { inputs: Record<string, TensorInfo>; backend: BackendWasm; attrs: MatMulAttrs }) => {
    const { inputs, backend, attrs } = args;
    if (!attrs.transposeA && !attrs.transposeB) return original(args as never);
    const temporaries: TensorInfo[] = [];
    const explicit = (x: TensorInfo): TensorInfo => {
      const rank = x.shape.length;
      const rows = x.shape[rank - 2]!;
      const cols = x.shape[rank - 1]!;
      const batch = sizeOf(x.shape.slice(0, -2));
      const flipped = transposeLastTwo(backend, transpose, withShape(x, [batch, rows, cols]));
      temporaries.push(flipped);
      return withShape(flipped, [...x.shape.slice(0, -2), cols, rows]);
    };
    const a = attrs.transposeA ? explicit(inputs['a']!) : inputs['a']!;
    const b = attrs.transposeB ? explicit(inputs['b']!) : inputs['b']!;
    const result = original({
      inputs: { ...inputs, a, b }, backend, attrs: { ...attrs, transposeA: false, transposeB: false },
    } as never) as TensorInfo;
    dispose(backend, ...temporaries);
    return result;
  }) as unknown as KernelFunc;
}

type TileArgs = { inputs: Record<string, TensorInfo>; backend: BackendWasm; attrs: { reps: number[] } };

/** Tile by block copies: each axis is filled once from the input, then doubled in place with copyWithin. */
export function fastTile(original: KernelFunc): KernelFunc {
  return ((args: TileArgs) => {
    const { inputs, backend, attrs } = args;
    const x = inputs['x']!;
    if (x.dtype === 'string' || x.shape.length === 0) return original(args as never);
    const reps = attrs.reps;
    const inShape = x.shape;
    const outShape = inShape.map((d, i) => d * (reps[i] ?? 1));
    const out = backend.makeOutput(outShape, x.dtype);
    if (sizeOf(outShape) === 0) return out;
    const target = backend.typedArrayFromHeap(out) as Float32Array | Int32Array | Uint8Array;
    const source = backend.typedArrayFromHeap(x) as Float32Array | Int32Array | Uint8Array;
    const rank = inShape.length;
    const inStrides = new Array<number>(rank);
    const outStrides = new Array<number>(rank);
    inStrides[rank - 1] = 1;
    outStrides[rank - 1] = 1;
    for (let axis = rank - 2; axis >= 0; axis--) {
      inStrides[axis] = inStrides[axis + 1]! * inShape[axis + 1]!;
      outStrides[axis] = outStrides[axis + 1]! * outShape[axis + 1]!;
    }
    const fill = (axis: number, outOffset: number, inOffset: number): void => {
      const length = inShape[axis]!;
      if (axis === rank - 1) {
        target.set(source.subarray(inOffset, inOffset + length), outOffset);
      } else {
        for (let i = 0; i < length; i++) fill(axis + 1, outOffset + i * outStrides[axis]!, inOffset + i * inStrides[axis]!);
      }
      const block = length * outStrides[axis]!;
      const total = block * reps[axis]!;
      // Double the filled prefix until the axis is complete: log2(reps) copies.
      for (let filled = block; filled < total; filled *= 2) {
        target.copyWithin(outOffset + filled, outOffset, outOffset + Math.min(filled, total - filled));
      }
    };
    fill(0, 0, 0);
    return out;
  }) as unknown as KernelFunc;
}

