// Gradients of DepthwiseConv2dNative on the wasm backend. The input gradient is a depthwise convolution of the
// (dilated) output gradient with the rotated filter, so it runs on the backend's XNNPACK kernel; the filter
// gradient has no matrix-product form and is a loop over channels-last rows, which V8 compiles well.
import { backend_util } from '@tensorflow/tfjs-core';
import type { DepthwiseConv2dNativeBackpropFilterAttrs, DepthwiseConv2dNativeBackpropInputAttrs, TensorInfo } from '@tensorflow/tfjs-core';
import { backpropInputPadding, dilateGradient } from './conv-backprop.ts';
import type { WasmKernels } from './conv-backprop.ts';
import { callKernel, dispose, heapFloats } from './heap.ts';
import type { BackendWasm } from './heap.ts';

type ConvInfo = backend_util.Conv2DInfo;

function depthwiseInfo(
  inputShape: [number, number, number, number],
  filterShape: [number, number, number, number],
  attrs: DepthwiseConv2dNativeBackpropInputAttrs | DepthwiseConv2dNativeBackpropFilterAttrs,
): ConvInfo {
  return backend_util.computeConv2DInfo(
    inputShape, filterShape, attrs.strides, attrs.dilations, attrs.pad as never, attrs.dimRoundingMode, true,
  );
}

export function depthwiseBackpropInput(
  args: { inputs: Record<string, TensorInfo>; backend: BackendWasm; attrs: DepthwiseConv2dNativeBackpropInputAttrs },
  kernels: WasmKernels,
): TensorInfo {
  const { inputs, backend, attrs } = args;
  const dy = inputs['dy']!;
  const filter = inputs['filter']!;
  const info = depthwiseInfo(attrs.inputShape, filter.shape as [number, number, number, number], attrs);
  const multiplier = info.outChannels / info.inChannels;
  if (multiplier !== 1 || info.dilationHeight !== 1 || info.dilationWidth !== 1) return depthwiseBackpropInputLoop(backend, dy, filter, info);

  const { filterHeight, filterWidth, inChannels } = info;
  const rotated = backend.makeOutput([filterHeight, filterWidth, inChannels, 1], 'float32');
  const rotatedValues = heapFloats(backend, rotated);
  const filterValues = heapFloats(backend, filter);
  for (let row = 0; row < filterHeight; row++) {
    for (let col = 0; col < filterWidth; col++) {
      const from = ((filterHeight - 1 - row) * filterWidth + (filterWidth - 1 - col)) * inChannels;
      rotatedValues.set(filterValues.subarray(from, from + inChannels), (row * filterWidth + col) * inChannels);
    }
  }
  const dilated = dilateGradient(backend, dy, info.strideHeight, info.strideWidth);
  const dx = callKernel(kernels.depthwiseConv2d, backend, { x: dilated, filter: rotated }, {
    strides: [1, 1], pad: backpropInputPadding(info), dilations: [1, 1], dimRoundingMode: undefined,
  } as never);
  dispose(backend, rotated);
  if (dilated !== dy) dispose(backend, dilated);
  return dx;
}

/** The general case (channel multiplier > 1, dilations): a direct scatter loop. */
function depthwiseBackpropInputLoop(backend: BackendWasm, dy: TensorInfo, filter: TensorInfo, info: ConvInfo): TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels, outChannels } = info;
  const multiplier = outChannels / inChannels;
  const out = backend.makeOutput([batchSize, inHeight, inWidth, inChannels], 'float32');
  const dx = heapFloats(backend, out);
  const dyValues = heapFloats(backend, dy);
  const filterValues = heapFloats(backend, filter);
  dx.fill(0);
  forEachTap(info, (dyOffset, xOffset, filterOffset) => {
    for (let c = 0; c < inChannels; c++) {
      let sum = 0;
      for (let m = 0; m < multiplier; m++) {
        sum += dyValues[dyOffset + c * multiplier + m]! * filterValues[filterOffset + c * multiplier + m]!;
      }
      dx[xOffset + c] = dx[xOffset + c]! + sum;
    }
  });
  return out;
}

export function depthwiseBackpropFilter(
  args: { inputs: Record<string, TensorInfo>; backend: BackendWasm; attrs: DepthwiseConv2dNativeBackpropFilterAttrs },
): TensorInfo {
  const { inputs, backend, attrs } = args;
  const x = inputs['x']!;
  const dy = inputs['dy']!;
  const info = depthwiseInfo(x.shape as [number, number, number, number], attrs.filterShape, attrs);
  const { inChannels, outChannels } = info;
  const multiplier = outChannels / inChannels;
  const out = backend.makeOutput(attrs.filterShape, 'float32');
  const dw = heapFloats(backend, out);
  const xValues = heapFloats(backend, x);
  const dyValues = heapFloats(backend, dy);
  // The loop of forEachTap, inlined for speed: this is the hottest loop of a tail step.
  const {
    batchSize, inHeight, inWidth, outHeight, outWidth, filterHeight, filterWidth, strideHeight, strideWidth,
    dilationHeight, dilationWidth,
  } = info;
  const { top, left } = info.padInfo;
  // Float64 accumulation per filter tap: a sum over every pixel of the batch loses float32 precision.
  const accumulator = new Float64Array(outChannels);
  for (let fr = 0; fr < filterHeight; fr++) {
    for (let fc = 0; fc < filterWidth; fc++) {
      accumulator.fill(0);
      for (let n = 0; n < batchSize; n++) {
        for (let outRow = 0; outRow < outHeight; outRow++) {
          const row = outRow * strideHeight + fr * dilationHeight - top;
          if (row < 0 || row >= inHeight) continue;
          for (let outCol = 0; outCol < outWidth; outCol++) {
            const col = outCol * strideWidth + fc * dilationWidth - left;
            if (col < 0 || col >= inWidth) continue;
            const dyOffset = ((n * outHeight + outRow) * outWidth + outCol) * outChannels;
            const xOffset = ((n * inHeight + row) * inWidth + col) * inChannels;
            if (multiplier === 1) {
              for (let c = 0; c < inChannels; c++) accumulator[c] = accumulator[c]! + xValues[xOffset + c]! * dyValues[dyOffset + c]!;
            } else {
              for (let c = 0; c < inChannels; c++) {
                const xv = xValues[xOffset + c]!;
                for (let m = 0; m < multiplier; m++) {
                  const k = c * multiplier + m;
                  accumulator[k] = accumulator[k]! + xv * dyValues[dyOffset + k]!;
                }
              }
            }
          }
        }
      }
      const filterOffset = (fr * filterWidth + fc) * outChannels;
      for (let k = 0; k < outChannels; k++) dw[filterOffset + k] = accumulator[k]!;
    }
  }
  return out;
}

/**
 * Calls visit(dyOffset, xOffset, filterOffset) for every (filter tap, output pixel) pair whose input pixel is
 * inside the image, grouped by filter tap (the outer loop) so a tap's accumulator stays in cache.
 */
function forEachTap(info: ConvInfo, visit: (dyOffset: number, xOffset: number, filterOffset: number) => void): void {
  const {
    batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth,
    strideHeight, strideWidth, dilationHeight, dilationWidth,
  } = info;
  const { top, left } = info.padInfo;
  for (let fr = 0; fr < filterHeight; fr++) {
    for (let fc = 0; fc < filterWidth; fc++) {
      const filterOffset = (fr * filterWidth + fc) * outChannels;
      for (let n = 0; n < batchSize; n++) {
        for (let outRow = 0; outRow < outHeight; outRow++) {
          const row = outRow * strideHeight + fr * dilationHeight - top;
          if (row < 0 || row >= inHeight) continue;
          for (let outCol = 0; outCol < outWidth; outCol++) {
            const col = outCol * strideWidth + fc * dilationWidth - left;
            if (col < 0 || col >= inWidth) continue;
            visit(((n * outHeight + outRow) * outWidth + outCol) * outChannels, ((n * inHeight + row) * inWidth + col) * inChannels, filterOffset);
          }
        }
      }
    }
  }
}
