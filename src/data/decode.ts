/**
 * Image decoding by content, not by file extension: PNG, JPEG, BMP, TIFF, WebP (and GIF) become 8-bit RGB.
 * Alpha is composited onto black (CT backgrounds are black), grey and CMYK become RGB, 16-bit becomes 8-bit,
 * EXIF orientation is applied. Resizing to size x size uses sharp's `linear` kernel (bilinear, with libvips'
 * anti-aliasing when shrinking) and does not keep the aspect ratio, as Keras' image_dataset_from_directory.
 */
import { readFile, stat } from 'node:fs/promises';
import sharp from 'sharp';
import type { Metadata, Sharp } from 'sharp';
import { DEFAULTS } from '../config/index.ts';
import { bmpHeaderSize, decodeBmp } from './bmp.ts';
import { ImageError } from './errors.ts';

export type ImageFormat = 'png' | 'jpeg' | 'bmp' | 'tiff' | 'webp' | 'gif';

export interface ImageInfo {
  format: ImageFormat;
  width: number;
  height: number;
  /** PIL-style mode of the stored image: L, LA, RGB, RGBA, P, CMYK, with ';16' for 16-bit. */
  mode: string;
  progressive: boolean;
  /** EXIF orientation tag (1 = upright) when present. */
  orientation: number | undefined;
}

export interface DecodedImage {
  /** RGB, row-major, 8-bit: width * height * 3 bytes. */
  data: Uint8Array;
  width: number;
  height: number;
}

export interface DecodeLimits {
  maxPixels: number;
  maxFileBytes: number;
}

const DEFAULT_LIMITS: DecodeLimits = { maxPixels: DEFAULTS.data.maxPixels, maxFileBytes: DEFAULTS.data.maxFileBytes };

export function sniffFormat(buffer: Uint8Array): ImageFormat | null {
  const b = buffer;
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return 'png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 2 && b[0] === 0x42 && b[1] === 0x4d) return 'bmp';
  if (b.length >= 4 && ((b[0] === 0x49 && b[1] === 0x49 && b[2] === 0x2a && b[3] === 0) || (b[0] === 0x4d && b[1] === 0x4d && b[2] === 0 && b[3] === 0x2a))) return 'tiff';
  if (b.length >= 12 && String.fromCharCode(...b.subarray(0, 4)) === 'RIFF' && String.fromCharCode(...b.subarray(8, 12)) === 'WEBP') return 'webp';
  if (b.length >= 6 && String.fromCharCode(...b.subarray(0, 4)) === 'GIF8') return 'gif';
  return null;
}

/** Reads a file for decoding, refusing missing, empty and oversized files with the reason. */
export async function readImageFile(path: string, limits: DecodeLimits = DEFAULT_LIMITS): Promise<Buffer> {
  let size: number;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new ImageError(path, 'not a regular file');
    size = info.size;
  } catch (error) {
    if (error instanceof ImageError) throw error;
    throw new ImageError(path, `cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  if (size === 0) throw new ImageError(path, 'empty file (0 bytes)');
  if (size > limits.maxFileBytes) throw new ImageError(path, `file too large (${size} bytes, limit ${limits.maxFileBytes})`);
  return readFile(path);
}

function modeOf(meta: Metadata): string {
  const sixteen = meta.depth === 'ushort' ? ';16' : '';
  if (meta.space === 'cmyk') return 'CMYK';
  if (meta.isPalette) return 'P';
  const channels = meta.channels ?? 3;
  if (meta.space === 'b-w' || meta.space === 'grey16' || channels <= 2) return (channels === 2 ? 'LA' : 'L') + sixteen;
  return (channels === 4 ? 'RGBA' : 'RGB') + sixteen;
}

function checkPixels(file: string, width: number, height: number, limits: DecodeLimits): void {
  if (width <= 0 || height <= 0) throw new ImageError(file, `invalid image size ${width}x${height}`);
  if (width * height > limits.maxPixels) {
    throw new ImageError(file, `too many pixels (${width}x${height} = ${width * height}, limit ${limits.maxPixels}); refused before decoding`);
  }
}

/** Reads only the header: format, size, mode. Refuses non-images and oversized images without decoding. */
export async function probeImage(buffer: Buffer, file: string, limits: DecodeLimits = DEFAULT_LIMITS): Promise<ImageInfo> {
  const format = sniffFormat(buffer);
  if (!format) throw new ImageError(file, 'not a supported image (content is not PNG, JPEG, BMP, TIFF, WebP or GIF)');
  if (format === 'bmp') {
    const size = bmpHeaderSize(buffer);
    if (!size) throw new ImageError(file, 'truncated BMP header');
    checkPixels(file, size.width, size.height, limits);
    const bits = buffer.length >= 30 ? buffer.readUInt16LE(28) : 24;
    return { format, ...size, mode: bits <= 8 ? 'P' : bits === 32 ? 'RGBA' : 'RGB', progressive: false, orientation: undefined };
  }
  let meta: Metadata;
  try {
    meta = await sharp(buffer, { limitInputPixels: false }).metadata();
  } catch (error) {
    throw new ImageError(file, `corrupt ${format.toUpperCase()} header: ${(error as Error).message}`);
  }
  checkPixels(file, meta.width ?? 0, meta.height ?? 0, limits);
  return {
    format,
    width: meta.width ?? 0,
    height: meta.height ?? 0,
    mode: modeOf(meta),
    progressive: Boolean(meta.isProgressive),
    orientation: meta.orientation,
  };
}

export interface DecodeOptions {
  /** Resize to size x size; omit to keep the stored size. */
  size?: number;
  limits?: DecodeLimits;
  /** Name used in error messages when the input is a buffer. */
  name?: string;
}

/** Decodes an already-read buffer to 8-bit RGB. */
export async function decodeBuffer(buffer: Buffer, options: DecodeOptions = {}): Promise<DecodedImage & { info: ImageInfo }> {
  const file = options.name ?? '<buffer>';
  const limits = options.limits ?? DEFAULT_LIMITS;
  const info = await probeImage(buffer, file, limits);
  try {
    let pipeline: Sharp;
    if (info.format === 'bmp') {
      const raw = decodeBmp(buffer);
      pipeline = sharp(raw.data, { raw: { width: raw.width, height: raw.height, channels: 3 } });
    } else {
      pipeline = sharp(buffer, { limitInputPixels: limits.maxPixels, failOn: 'truncated' }).rotate();
    }
    pipeline = pipeline.flatten({ background: '#000000' }).toColourspace('srgb');
    if (options.size !== undefined) pipeline = pipeline.resize(options.size, options.size, { fit: 'fill', kernel: 'linear' });
    const { data, info: out } = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    return { data: toRgb(data, out.channels, out.width * out.height), width: out.width, height: out.height, info };
  } catch (error) {
    if (error instanceof ImageError) throw error;
    throw new ImageError(file, `cannot decode ${info.format.toUpperCase()}: ${(error as Error).message}`);
  }
}

function toRgb(data: Buffer, channels: number, pixels: number): Uint8Array {
  if (channels === 3) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(pixels * 3);
  for (let i = 0; i < pixels; i++) {
    const grey = channels < 3;
    out[i * 3] = data[i * channels]!;
    out[i * 3 + 1] = data[i * channels + (grey ? 0 : 1)]!;
    out[i * 3 + 2] = data[i * channels + (grey ? 0 : 2)]!;
  }
  return out;
}

/** Reads and decodes one image file; every failure is an ImageError naming the file and the reason. */
export async function decodeImage(input: string | Buffer, options: DecodeOptions = {}): Promise<DecodedImage & { info: ImageInfo }> {
  if (typeof input !== 'string') return decodeBuffer(input, options);
  const buffer = await readImageFile(input, options.limits ?? DEFAULT_LIMITS);
  return decodeBuffer(buffer, { ...options, name: input });
}
