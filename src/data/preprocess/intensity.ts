/**
 * Intensity normalisation: the same tissue should get about the same grey whichever paper, scanner or window the
 * image came from (some figures are washed out, some crawled images low in contrast). `stretch` maps the
 * luminance percentiles [low, high] linearly to [0, 255], clamped outside: a window set from the image itself,
 * robust to a few bright labels or black borders. One 256-entry lookup table from the luminance histogram is
 * applied to every channel, so a grey image stays grey. (Global histogram equalisation was looked at and left
 * out: on CT it floods the soft tissue with noise and flattens the lung-to-tissue contrast.)
 */
import type { IntensityMode } from '../../config/index.ts';
import type { DecodedImage } from '../decode.ts';
import { luminance } from './grayscale.ts';

/** The percentiles `stretch` maps to black and white. */
export const STRETCH_PERCENTILES = { low: 0.01, high: 0.99 } as const;

function histogram(image: DecodedImage): Float64Array {
  const counts = new Float64Array(256);
  for (const value of luminance(image)) counts[value]!++;
  return counts;
}

/** The smallest grey level with at least fraction q of the pixels at or below it. */
function percentileLevel(counts: Float64Array, total: number, q: number): number {
  let cumulative = 0;
  for (let level = 0; level < 256; level++) {
    cumulative += counts[level]!;
    if (cumulative >= q * total) return level;
  }
  return 255;
}

/** Lookup table of `stretch`: identity when the image has a single level between the percentiles. */
export function stretchTable(image: DecodedImage, percentiles: { low: number; high: number } = STRETCH_PERCENTILES): Uint8Array {
  const counts = histogram(image);
  const total = image.width * image.height;
  const low = percentileLevel(counts, total, percentiles.low);
  const high = percentileLevel(counts, total, percentiles.high);
  const table = new Uint8Array(256);
  for (let level = 0; level < 256; level++) {
    table[level] = high > low ? Math.round(Math.min(255, Math.max(0, ((level - low) * 255) / (high - low)))) : level;
  }
  return table;
}

/** The image with its intensities normalised by `mode` (the same image back for 'none'). */
export function normalizeIntensity(image: DecodedImage, mode: IntensityMode): DecodedImage {
  if (mode === 'none') return image;
  const table = stretchTable(image);
  const data = new Uint8Array(image.data.length);
  for (let i = 0; i < data.length; i++) data[i] = table[image.data[i]!]!;
  return { data, width: image.width, height: image.height };
}
