/**
 * The published five augmentations as one seeded random affine warp plus a contrast change:
 * horizontal and vertical flips, rotation in [-r, +r] of a full turn, zoom by a factor in [1-z, 1+z],
 * translation by up to t of the width and height, contrast factor in [1-c, 1+c] around each channel's mean.
 * Like Keras' preprocessing layers: bilinear sampling, 'reflect' fill, contrast clipped to [0, 255].
 * Each draw comes from the Rng passed in, so the same seed gives the same pixels.
 */
import type { AugmentConfig } from '../config/index.ts';
import type { DecodedImage } from './decode.ts';
import type { Rng } from './random.ts';

export interface AugmentParams {
  flipHorizontal: boolean;
  flipVertical: boolean;
  /** Radians. */
  angle: number;
  /** >1 zooms in (content grows), <1 zooms out. */
  zoom: number;
  /** Fractions of the width and height. */
  translateX: number;
  translateY: number;
  contrast: number;
}

export const IDENTITY: AugmentParams = { flipHorizontal: false, flipVertical: false, angle: 0, zoom: 1, translateX: 0, translateY: 0, contrast: 1 };

export function sampleAugment(config: AugmentConfig, rng: Rng): AugmentParams {
  // Every draw is taken whatever the config, so turning one augmentation off does not shift the others' draws.
  const flipHorizontal = rng.bool();
  const flipVertical = rng.bool();
  const turn = rng.uniform(-1, 1);
  const zoom = rng.uniform(-1, 1);
  const translateX = rng.uniform(-1, 1);
  const translateY = rng.uniform(-1, 1);
  const contrast = rng.uniform(-1, 1);
  return {
    flipHorizontal: config.horizontalFlip && flipHorizontal,
    flipVertical: config.verticalFlip && flipVertical,
    angle: turn * config.rotation * 2 * Math.PI,
    zoom: 1 + zoom * config.zoom,
    translateX: translateX * config.translation,
    translateY: translateY * config.translation,
    contrast: 1 + contrast * config.contrast,
  };
}

/** Reflects an out-of-range coordinate back into [0, n-1] (Keras' 'reflect': d c b a | a b c d | d c b a). */
function reflect(v: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * n;
  let m = v % period;
  if (m < 0) m += period;
  return m < n ? m : period - 1 - m;
}

/** The two mirror images test-time augmentation adds to the identity (horizontal, then vertical flip). */
export function mirrorViews(image: DecodedImage): DecodedImage[] {
  const { width: w, height: h, data } = image;
  // Row and pixel copies: the general warp of applyAugment gives the same bytes at a tenth of the speed.
  const horizontal = new Uint8Array(data.length);
  const vertical = new Uint8Array(data.length);
  const row = w * 3;
  for (let y = 0; y < h; y++) {
    vertical.set(data.subarray(y * row, (y + 1) * row), (h - 1 - y) * row);
    for (let x = 0; x < w; x++) {
      const from = y * row + x * 3;
      const to = y * row + (w - 1 - x) * 3;
      horizontal[to] = data[from]!;
      horizontal[to + 1] = data[from + 1]!;
      horizontal[to + 2] = data[from + 2]!;
    }
  }
  return [horizontal, vertical].map((mirrored) => ({ data: mirrored, width: w, height: h }));
}

export function applyAugment(image: DecodedImage, params: AugmentParams): Uint8Array {
  const { width: w, height: h, data } = image;
  const out = new Uint8Array(w * h * 3);
  const cx = (w - 1) / 2;
  const cy = (h - 1) / 2;
  const cos = Math.cos(params.angle);
  const sin = Math.sin(params.angle);
  const tx = params.translateX * w;
  const ty = params.translateY * h;
  const scale = 1 / params.zoom;
  const identityWarp = params.angle === 0 && params.zoom === 1 && tx === 0 && ty === 0;
  const sample = new Float32Array(3);
  const means = [0, 0, 0];

  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      // Output pixel -> source pixel: undo the translation, rotation and zoom about the centre, then the flips.
      let sx = x;
      let sy = y;
      if (!identityWarp) {
        const dx = (x - cx - tx) * scale;
        const dy = (y - cy - ty) * scale;
        sx = cos * dx + sin * dy + cx;
        sy = -sin * dx + cos * dy + cy;
      }
      if (params.flipHorizontal) sx = w - 1 - sx;
      if (params.flipVertical) sy = h - 1 - sy;
      if (identityWarp) {
        const o = (sy * w + sx) * 3;
        sample[0] = data[o]!;
        sample[1] = data[o + 1]!;
        sample[2] = data[o + 2]!;
      } else bilinear(data, w, h, sx, sy, sample);
      const o = (y * w + x) * 3;
      for (let c = 0; c < 3; c++) {
        out[o + c] = Math.round(sample[c]!);
        means[c]! += sample[c]!;
      }
    }
  }
  if (params.contrast !== 1) {
    for (let c = 0; c < 3; c++) means[c]! /= w * h;
    for (let i = 0; i < out.length; i++) {
      const mean = means[i % 3]!;
      // out holds rounded samples; the contrast is applied to them and clipped to the 8-bit range.
      out[i] = Math.min(255, Math.max(0, Math.round((out[i]! - mean) * params.contrast + mean)));
    }
  }
  return out;
}

function bilinear(data: Uint8Array, w: number, h: number, sx: number, sy: number, out: Float32Array): void {
  const x0f = Math.floor(sx);
  const y0f = Math.floor(sy);
  const fx = sx - x0f;
  const fy = sy - y0f;
  const x0 = reflect(x0f, w);
  const x1 = reflect(x0f + 1, w);
  const y0 = reflect(y0f, h);
  const y1 = reflect(y0f + 1, h);
  const a = (y0 * w + x0) * 3;
  const b = (y0 * w + x1) * 3;
  const c = (y1 * w + x0) * 3;
  const d = (y1 * w + x1) * 3;
  for (let k = 0; k < 3; k++) {
    const top = data[a + k]! + (data[b + k]! - data[a + k]!) * fx;
    const bottom = data[c + k]! + (data[d + k]! - data[c + k]!) * fx;
    out[k] = top + (bottom - top) * fy;
  }
}

/** A seeded augmentation step: each call draws new parameters from the generator given. */
export function augmenter(config: AugmentConfig): (image: DecodedImage, rng: Rng) => Uint8Array {
  return (image, rng) => applyAugment(image, sampleAugment(config, rng));
}
