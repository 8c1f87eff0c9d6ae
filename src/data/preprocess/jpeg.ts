/**
 * Random JPEG re-encoding: the image is encoded as a baseline JPEG at a quality drawn from the generator and
 * decoded again. Applied to training views of both classes, it gives every image JPEG artefacts, so the
 * container (non-COVID training images are half JPEG, COVID mostly PNG) stops predicting the class.
 * libjpeg(-turbo) in sharp is deterministic: the same seed gives the same quality and the same bytes.
 */
import sharp from 'sharp';
import type { DecodedImage } from '../decode.ts';
import type { Rng } from '../random.ts';

export interface JpegReencodeOptions {
  /** Quality drawn uniformly from the integers minQuality..maxQuality (inclusive), 1-100. */
  minQuality: number;
  maxQuality: number;
}

export const DEFAULT_JPEG_QUALITY: JpegReencodeOptions = { minQuality: 60, maxQuality: 95 };

/** One quality draw (one rng call), exposed so callers can log or test it. */
export function drawJpegQuality(rng: Rng, options: JpegReencodeOptions = DEFAULT_JPEG_QUALITY): number {
  const { minQuality, maxQuality } = options;
  if (!Number.isInteger(minQuality) || !Number.isInteger(maxQuality) || minQuality < 1 || maxQuality > 100 || minQuality > maxQuality) {
    throw new RangeError(`jpegReencode: quality range must be integers with 1 <= min <= max <= 100, got [${minQuality}, ${maxQuality}]`);
  }
  return minQuality + rng.int(maxQuality - minQuality + 1);
}

/** Encodes RGB pixels as a baseline 4:2:0 JPEG at the given quality (no metadata). */
export async function encodeJpeg(image: DecodedImage, quality: number): Promise<Buffer> {
  return sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .jpeg({ quality, chromaSubsampling: '4:2:0', mozjpeg: false, progressive: false, optimiseCoding: true })
    .toBuffer();
}

/** Re-encodes the image as JPEG at a quality drawn from `rng` and decodes it back to RGB of the same size. */
export async function jpegReencode(
  image: DecodedImage,
  rng: Rng,
  options: JpegReencodeOptions = DEFAULT_JPEG_QUALITY,
): Promise<DecodedImage & { quality: number }> {
  const quality = drawJpegQuality(rng, options);
  const jpeg = await encodeJpeg(image, quality);
  const { data, info } = await sharp(jpeg).toColourspace('srgb').removeAlpha().raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || info.width !== image.width || info.height !== image.height) {
    throw new Error(`jpegReencode: decoded ${info.width}x${info.height}x${info.channels}, expected ${image.width}x${image.height}x3`);
  }
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height, quality };
}
