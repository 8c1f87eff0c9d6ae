// Gradients of Conv2D on the wasm backend, built on its XNNPACK Conv2D, Transpose and BatchMatMul kernels.
import { backend_util } from '@tensorflow/tfjs-core';
import type { Conv2DBackpropFilterAttrs, Conv2DBackpropInputAttrs, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { callKernel, dispose, heapFloats, transposeLastTwo, withShape } from './heap.ts';
import type { BackendWasm } from './heap.ts';

export type WasmKernels = {
  conv2d: KernelFunc;
  depthwiseConv2d: KernelFunc;
  transpose: KernelFunc;
  batchMatMul: KernelFunc;
};

type ConvInfo = backend_util.Conv2DInfo;

// im2col buffers above this many floats are split over the batch to bound memory.
let maxColumnFloats = 1 << 24;

/** Lowers the im2col memory bound so tests can exercise the batch-chunked path on small inputs. */
export function setColumnBudgetForTesting(floats: number): void {
  maxColumnFloats = floats;
}

function requireChannelsLast(dataFormat: string | undefined, kernelName: string): void {
  if (dataFormat !== undefined && dataFormat !== 'NHWC') {
    throw new Error(`${kernelName} on wasm supports dataFormat 'NHWC' only, got '${dataFormat}'`);
  }
}

function requireNoDilation(info: ConvInfo, kernelName: string): void {
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) {
    throw new Error(`${kernelName} on wasm supports dilations of 1 only`);
  }
}

/**
 * Writes dy into a zero tensor at every stride-th position, so that the input gradient of a strided
 * convolution becomes a stride-1 convolution of it. Returns dy itself for stride 1.
 */
export function dilateGradient(backend: BackendWasm, dy: TensorInfo, strideHeight: number, strideWidth: number): TensorInfo {
  if (strideHeight === 1 && strideWidth === 1) return dy;
  const [batch, outHeight, outWidth, channels] = dy.shape as [number, number, number, number];
  const height = (outHeight - 1) * strideHeight + 1;
  const width = (outWidth - 1) * strideWidth + 1;
  const out = backend.makeOutput([batch, height, width, channels], 'float32');
  const target = heapFloats(backend, out);
  const source = heapFloats(backend, dy);
  target.fill(0);
  for (let n = 0; n < batch; n++) {
    for (let row = 0; row < outHeight; row++) {
      for (let col = 0; col < outWidth; col++) {
        const from = ((n * outHeight + row) * outWidth + col) * channels;
        const to = ((n * height + row * strideHeight) * width + col * strideWidth) * channels;
        target.set(source.subarray(from, from + channels), to);
      }
    }
  }
  return out;
}

/**
 * Explicit padding of the stride-1 convolution over the dilated gradient that yields the input gradient:
 * before = k - 1 - forward pad before, after = whatever makes the output as large as the forward input.
 */
export function backpropInputPadding(info: ConvInfo): [[number, number], [number, number], [number, number], [number, number]] {
  const top = info.filterHeight - 1 - info.padInfo.top;
  const left = info.filterWidth - 1 - info.padInfo.left;
  const bottom = info.inHeight + info.padInfo.top - (info.outHeight - 1) * info.strideHeight - 1;
  const right = info.inWidth + info.padInfo.left - (info.outWidth - 1) * info.strideWidth - 1;
  if (top < 0 || left < 0 || bottom < 0 || right < 0) {
    throw new Error(`unsupported convolution padding for a gradient: ${JSON.stringify(info.padInfo)}`);
  }
  return [[0, 0], [top, bottom], [left, right], [0, 0]];
}

export function conv2DBackpropInput(args: { inputs: Record<string, TensorInfo>; backend: BackendWasm; attrs: Conv2DBackpropInputAttrs }, kernels: WasmKernels): TensorInfo {
  const { inputs, backend, attrs } = args;
  const dy = inputs['dy']!;
  const filter = inputs['filter']!;
  requireChannelsLast(attrs.dataFormat, 'Conv2DBackpropInput');
  const info = backend_util.computeConv2DInfo(
    attrs.inputShape, filter.shape as [number, number, number, number], attrs.strides, 1, attrs.pad, attrs.dimRoundingMode,
  );
  const { filterHeight, filterWidth, inChannels, outChannels } = info;

  // The transposed, rotated filter [kh, kw, out, in]: the input gradient is a convolution of dy with it.
  const flipped = backend.makeOutput([filterHeight, filterWidth, outChannels, inChannels], 'float32');
  const flippedValues = heapFloats(backend, flipped);
  const filterValues = heapFloats(backend, filter);
  for (let row = 0; row < filterHeight; row++) {
    for (let col = 0; col < filterWidth; col++) {
      const from = ((filterHeight - 1 - row) * filterWidth + (filterWidth - 1 - col)) * inChannels * outChannels;
      const to = (row * filterWidth + col) * outChannels * inChannels;
      for (let i = 0; i < inChannels; i++) {
        for (let o = 0; o < outChannels; o++) flippedValues[to + o * inChannels + i] = filterValues[from + i * outChannels + o]!;
      }
    }
  }
  const dilated = dilateGradient(backend, dy, info.strideHeight, info.strideWidth);
  const dx = callKernel(kernels.conv2d, backend, { x: dilated, filter: flipped }, {
    strides: [1, 1], pad: backpropInputPadding(info), dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined,
  } as never);
  dispose(backend, flipped);
  if (dilated !== dy) dispose(backend, dilated);
  return dx;
}

/** Rows of the im2col matrix for images [first, first + count): one row per output pixel, columns (kh, kw, in). */
function im2col(backend: BackendWasm, x: TensorInfo, info: ConvInfo, first: number, count: number): TensorInfo {
  const { inHeight, inWidth, inChannels, outHeight, outWidth, filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const { top, left } = info.padInfo;
  const columns = filterHeight * filterWidth * inChannels;
  const out = backend.makeOutput([count * outHeight * outWidth, columns], 'float32');
  const target = heapFloats(backend, out);
  const source = heapFloats(backend, x);
  let to = 0;
  for (let n = first; n < first + count; n++) {
    for (let outRow = 0; outRow < outHeight; outRow++) {
      for (let outCol = 0; outCol < outWidth; outCol++) {
        for (let fr = 0; fr < filterHeight; fr++) {
          const row = outRow * strideHeight + fr - top;
          for (let fc = 0; fc < filterWidth; fc++) {
            const col = outCol * strideWidth + fc - left;
            if (row < 0 || row >= inHeight || col < 0 || col >= inWidth) {
              target.fill(0, to, to + inChannels);
            } else {
              const from = ((n * inHeight + row) * inWidth + col) * inChannels;
              target.set(source.subarray(from, from + inChannels), to);
            }
            to += inChannels;
          }
        }
      }
    }
  }
  return out;
}

function isPointwiseUnpadded(info: ConvInfo): boolean {
  return info.filterHeight === 1 && info.filterWidth === 1 && info.strideHeight === 1 && info.strideWidth === 1 &&
    info.padInfo.top === 0 && info.padInfo.left === 0 && info.padInfo.bottom === 0 && info.padInfo.right === 0;
}

export function conv2DBackpropFilter(args: { inputs: Record<string, TensorInfo>; backend: BackendWasm; attrs: Conv2DBackpropFilterAttrs }, kernels: WasmKernels): TensorInfo {
  const { inputs, backend, attrs } = args;
  const x = inputs['x']!;
  const dy = inputs['dy']!;
  requireChannelsLast(attrs.dataFormat, 'Conv2DBackpropFilter');
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], attrs.filterShape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode,
  );
  requireNoDilation(info, 'Conv2DBackpropFilter');
  const { batchSize, outHeight, outWidth, outChannels, filterHeight, filterWidth, inChannels } = info;
  const columns = filterHeight * filterWidth * inChannels;
  const pixelsPerImage = outHeight * outWidth;
  const dy3 = withShape(dy, [1, batchSize * pixelsPerImage, outChannels]);

  // dW = col^T . dy, with col^T made by an explicit transpose: the wasm BatchMatMul is slow when transposing.
  if (isPointwiseUnpadded(info)) {
    const xT = transposeLastTwo(backend, kernels.transpose, withShape(x, [1, batchSize * pixelsPerImage, inChannels]));
    const product = callKernel(kernels.batchMatMul, backend, { a: xT, b: dy3 }, { transposeA: false, transposeB: false });
    dispose(backend, xT);
    return withShape(product, attrs.filterShape);
  }
  const imagesPerChunk = Math.max(1, Math.floor(maxColumnFloats / (pixelsPerImage * columns)));
  let total: TensorInfo | undefined;
  for (let first = 0; first < batchSize; first += imagesPerChunk) {
    const count = Math.min(imagesPerChunk, batchSize - first);
    const col = im2col(backend, x, info, first, count);
    const colT = transposeLastTwo(backend, kernels.transpose, withShape(col, [1, count * pixelsPerImage, columns]));
    dispose(backend, col);
    const dyChunk = count === batchSize ? dy3 : sliceRows(backend, dy3, first * pixelsPerImage, count * pixelsPerImage);
    const product = callKernel(kernels.batchMatMul, backend, { a: colT, b: dyChunk }, { transposeA: false, transposeB: false });
    dispose(backend, colT);
    if (dyChunk !== dy3) dispose(backend, dyChunk);
    if (total === undefined) {
      total = product;
    } else {
      const sum = heapFloats(backend, total);
      const part = heapFloats(backend, product);
      for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! + part[i]!;
      dispose(backend, product);
    }
  }
  return withShape(total!, attrs.filterShape);
}

function sliceRows(backend: BackendWasm, matrix: TensorInfo, firstRow: number, rows: number): TensorInfo {
  const width = matrix.shape[matrix.shape.length - 1]!;
  const out = backend.makeOutput([1, rows, width], 'float32');
  heapFloats(backend, out).set(heapFloats(backend, matrix).subarray(firstRow * width, (firstRow + rows) * width));
  return out;
}
