/**
 * Lung segmentation without a trained model, for cropping CT slices to the lungs.
 *
 *  1. body: Otsu's threshold of the (3x3-smoothed) luminance; the largest bright 4-connected component, its
 *     holes filled (the lungs are holes in it);
 *  2. lungs: dark connected components inside the filled body that do not touch the image border, at least
 *     `minLungFraction` of the image each; the `maxLungs` largest are kept, those under 10 % of the largest dropped
 *     (trachea, bowel gas);
 *  3. morphological closing (square, radius `closingRadius` of the shorter side) and hole filling, so vessels and
 *     consolidations inside the lungs belong to them; the result is kept inside the body.
 *  4. plausibility: the lungs cover `minLungOfBody`..`maxLungOfBody` of the body. Otherwise `found` is false, the mask
 *     is empty, the box is the whole image and `reason` says why.
 *
 * `lungMaskHu` does the same on Hounsfield units (DICOM/NIfTI slices): body > -500 HU, lungs -1100..-400 HU
 * (about -1000 to -400, with room for noise).
 */
import type { DecodedImage } from '../decode.ts';
import { luminance } from './grayscale.ts';
import { close, connectedComponents, fillHoles, otsuThreshold, selectComponents } from './morphology.ts';

/** Pixel rectangle of the input image. */
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface LungMask {
  /** One byte per pixel, row-major, 1 = lung; all zero when not found. */
  mask: Uint8Array;
  width: number;
  height: number;
  found: boolean;
  /** Bounding box of the mask; the whole image when not found. */
  box: Box;
  /** Lung components kept. */
  components: number;
  /** Why no plausible lungs were found. */
  reason?: string;
}

export interface LungMaskOptions {
  /** A lung component has at least this fraction of the image's pixels. */
  minLungFraction: number;
  /** At most this many components (the largest) are lungs. */
  maxLungs: number;
  /** Closing radius as a fraction of the shorter side (at least 1 pixel). */
  closingRadius: number;
  /** The body has at least this fraction of the image. */
  minBodyFraction: number;
  /** Plausible lungs cover this range of the (filled) body's area. */
  minLungOfBody: number;
  maxLungOfBody: number;
}

export const LUNG_MASK_DEFAULTS: LungMaskOptions = {
  minLungFraction: 0.005,
  maxLungs: 2,
  closingRadius: 0.015,
  minBodyFraction: 0.1,
  minLungOfBody: 0.05,
  maxLungOfBody: 0.8,
};

export const LUNG_HU = { bodyAbove: -500, lungMin: -1100, lungMax: -400 } as const;

export function wholeImage(width: number, height: number): Box {
  return { x: 0, y: 0, width, height };
}

function notFound(width: number, height: number, reason: string): LungMask {
  return { mask: new Uint8Array(width * height), width, height, found: false, box: wholeImage(width, height), components: 0, reason };
}

function percent(x: number): string {
  return `${(100 * x).toFixed(1)} %`;
}

/** Bounding box of the foreground, or null when the mask is empty. */
export function maskBox(mask: Uint8Array, width: number, height: number): Box | null {
  let minX = width;
  let minY = height;
  let maxX = -1;
  let maxY = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (!mask[y * width + x]) continue;
      if (x < minX) minX = x;
      if (x > maxX) maxX = x;
      if (y < minY) minY = y;
      if (y > maxY) maxY = y;
    }
  }
  return maxX < 0 ? null : { x: minX, y: minY, width: maxX - minX + 1, height: maxY - minY + 1 };
}

/**
 * The shared core: `bright` marks body candidates, `dark` lung candidates (1 byte per pixel each).
 * Exported for other intensity scales; `lungMask` and `lungMaskHu` are the usual entry points.
 */
export function segmentLungs(bright: Uint8Array, dark: Uint8Array, width: number, height: number, options: Partial<LungMaskOptions> = {}): LungMask {
  const o = { ...LUNG_MASK_DEFAULTS, ...options };
  const pixels = width * height;
  const bodyParts = connectedComponents(bright, width, height);
  if (bodyParts.components.length === 0) return notFound(width, height, 'no bright body region');
  const largest = bodyParts.components.reduce((a, b) => (b.area > a.area ? b : a));
  if (largest.area < o.minBodyFraction * pixels) {
    return notFound(width, height, `largest bright region is ${percent(largest.area / pixels)} of the image (body needs ${percent(o.minBodyFraction)})`);
  }
  const body = fillHoles(selectComponents(bodyParts.labels, new Set([largest.label])), width, height);
  let bodyArea = 0;
  const inside = new Uint8Array(pixels);
  for (let i = 0; i < pixels; i++) {
    bodyArea += body[i]!;
    inside[i] = body[i]! & dark[i]!;
  }

  const candidates = connectedComponents(inside, width, height);
  const sized = candidates.components
    .filter((c) => !c.touchesBorder && c.area >= o.minLungFraction * pixels)
    .sort((a, b) => b.area - a.area);
  if (sized.length === 0) {
    const touching = candidates.components.filter((c) => c.touchesBorder && c.area >= o.minLungFraction * pixels).length;
    return notFound(width, height, touching > 0 ? 'the dark regions inside the body touch the image border' : 'no large dark region inside the body');
  }
  const kept = sized.slice(0, o.maxLungs).filter((c) => c.area >= 0.1 * sized[0]!.area);
  const radius = Math.max(1, Math.round(o.closingRadius * Math.min(width, height)));
  const closed = fillHoles(close(selectComponents(candidates.labels, new Set(kept.map((c) => c.label))), width, height, radius), width, height);
  let lungArea = 0;
  for (let i = 0; i < pixels; i++) {
    closed[i] = closed[i]! & body[i]!;
    lungArea += closed[i]!;
  }
  const share = lungArea / bodyArea;
  if (share < o.minLungOfBody || share > o.maxLungOfBody) {
    return notFound(width, height, `lungs would cover ${percent(share)} of the body (plausible: ${percent(o.minLungOfBody)}-${percent(o.maxLungOfBody)})`);
  }
  return { mask: closed, width, height, found: true, box: maskBox(closed, width, height)!, components: kept.length };
}

/** 3x3 mean of a grey image (edges use the pixels that exist), to quiet noise and JPEG artefacts before thresholding. */
function smooth3(grey: Uint8Array, width: number, height: number): Uint8Array {
  const out = new Uint8Array(grey.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let sum = 0;
      let n = 0;
      for (let dy = -1; dy <= 1; dy++) {
        const yy = y + dy;
        if (yy < 0 || yy >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx;
          if (xx < 0 || xx >= width) continue;
          sum += grey[yy * width + xx]!;
          n++;
        }
      }
      out[y * width + x] = Math.round(sum / n);
    }
  }
  return out;
}

/** Lung mask of an 8-bit RGB slice (any window): Otsu on the smoothed luminance splits body from air and lungs. */
export function lungMask(image: DecodedImage, options: Partial<LungMaskOptions> = {}): LungMask & { threshold: number } {
  const { width, height } = image;
  const grey = smooth3(luminance(image), width, height);
  const threshold = otsuThreshold(grey);
  const bright = new Uint8Array(grey.length);
  const dark = new Uint8Array(grey.length);
  for (let i = 0; i < grey.length; i++) {
    if (grey[i]! > threshold) bright[i] = 1;
    else dark[i] = 1;
  }
  return { ...segmentLungs(bright, dark, width, height, options), threshold };
}

/** Lung mask of a slice in Hounsfield units (DICOM or NIfTI `hu`, row-major width x height). */
export function lungMaskHu(hu: Float32Array, width: number, height: number, options: Partial<LungMaskOptions> = {}): LungMask {
  if (hu.length !== width * height) throw new RangeError(`lungMaskHu: ${hu.length} values for ${width}x${height}`);
  const bright = new Uint8Array(hu.length);
  const dark = new Uint8Array(hu.length);
  for (let i = 0; i < hu.length; i++) {
    const v = hu[i]!;
    if (v > LUNG_HU.bodyAbove) bright[i] = 1;
    if (v >= LUNG_HU.lungMin && v <= LUNG_HU.lungMax) dark[i] = 1;
  }
  return segmentLungs(bright, dark, width, height, options);
}

/** The box grown by `margin` of the image's width and height on every side, clipped to the image. */
export function expandBox(box: Box, margin: number, width: number, height: number): Box {
  const mx = Math.round(margin * width);
  const my = Math.round(margin * height);
  const x0 = Math.max(0, box.x - mx);
  const y0 = Math.max(0, box.y - my);
  const x1 = Math.min(width, box.x + box.width + mx);
  const y1 = Math.min(height, box.y + box.height + my);
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

/** Crops the box and resizes it to outWidth x outHeight, bilinear with half-pixel centres (as sharp/OpenCV). */
export function cropAndResize(image: DecodedImage, box: Box, outWidth = image.width, outHeight = image.height): DecodedImage {
  const out = new Uint8Array(outWidth * outHeight * 3);
  const { data, width } = image;
  const sx = box.width / outWidth;
  const sy = box.height / outHeight;
  for (let y = 0; y < outHeight; y++) {
    const fy = Math.min(box.height - 1, Math.max(0, (y + 0.5) * sy - 0.5));
    const y0 = Math.floor(fy);
    const y1 = Math.min(box.height - 1, y0 + 1);
    const wy = fy - y0;
    for (let x = 0; x < outWidth; x++) {
      const fx = Math.min(box.width - 1, Math.max(0, (x + 0.5) * sx - 0.5));
      const x0 = Math.floor(fx);
      const x1 = Math.min(box.width - 1, x0 + 1);
      const wx = fx - x0;
      const a = ((box.y + y0) * width + box.x + x0) * 3;
      const b = ((box.y + y0) * width + box.x + x1) * 3;
      const c = ((box.y + y1) * width + box.x + x0) * 3;
      const d = ((box.y + y1) * width + box.x + x1) * 3;
      const o = (y * outWidth + x) * 3;
      for (let k = 0; k < 3; k++) {
        const top = data[a + k]! + (data[b + k]! - data[a + k]!) * wx;
        const bottom = data[c + k]! + (data[d + k]! - data[c + k]!) * wx;
        out[o + k] = Math.round(top + (bottom - top) * wy);
      }
    }
  }
  return { data: out, width: outWidth, height: outHeight };
}

export interface LungCrop {
  /** The crop resized back to the input size; the input itself when no lungs were found. */
  image: DecodedImage;
  /** The crop box in input pixels (the whole image when not found). */
  box: Box;
  found: boolean;
  /** Set when no plausible lungs were found and the whole image was kept; callers log it. */
  warning?: string;
}

/** Crops to the lungs' bounding box grown by `margin` (fraction of width/height), resized back to the input size. */
export function lungCrop(image: DecodedImage, options: { margin: number } & Partial<LungMaskOptions>): LungCrop {
  const { margin, ...maskOptions } = options;
  if (!(margin >= 0 && margin < 0.5)) throw new RangeError(`lungCrop: margin must be in [0, 0.5), got ${margin}`);
  const lungs = lungMask(image, maskOptions);
  if (!lungs.found) {
    return { image, box: lungs.box, found: false, warning: `no plausible lungs (${lungs.reason}): the whole image is kept` };
  }
  const box = expandBox(lungs.box, margin, image.width, image.height);
  return { image: cropAndResize(image, box), box, found: true };
}
