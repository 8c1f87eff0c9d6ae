/**
 * Grayscale conversion: every pixel becomes its luminance, written to all three channels (R = G = B) so
 * ImageNet backbones still see 3-channel RGB. Coloured figure marks (arrows, labels, tints) lose their hue,
 * so colour cannot predict the class. Alpha never reaches this step: the decoder composites it onto black.
 */
import type { DecodedImage } from '../decode.ts';

/** ITU-R BT.601 luma weights (as PIL's `convert('L')` and OpenCV's `COLOR_RGB2GRAY`). */
export const LUMA_WEIGHTS = { r: 0.299, g: 0.587, b: 0.114 } as const;

/** Luminance of each pixel, rounded to 8 bits: one byte per pixel. */
export function luminance(image: DecodedImage): Uint8Array {
  const pixels = image.width * image.height;
  const out = new Uint8Array(pixels);
  const { data } = image;
  for (let i = 0; i < pixels; i++) {
    const o = i * 3;
    out[i] = Math.round(LUMA_WEIGHTS.r * data[o]! + LUMA_WEIGHTS.g * data[o + 1]! + LUMA_WEIGHTS.b * data[o + 2]!);
  }
  return out;
}

/** A grey single-channel buffer (one byte per pixel) as an RGB image with R = G = B. */
export function greyToRgb(grey: Uint8Array, width: number, height: number): DecodedImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < grey.length; i++) data[i * 3] = data[i * 3 + 1] = data[i * 3 + 2] = grey[i]!;
  return { data, width, height };
}

/** The image in grey: luminance (BT.601: 0.299 R + 0.587 G + 0.114 B, rounded) in all three channels. */
export function toGrayscale(image: DecodedImage): DecodedImage {
  return greyToRgb(luminance(image), image.width, image.height);
}
