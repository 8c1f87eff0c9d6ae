/**
 * JPEG 2000 through the optional package @cornerstonejs/codec-openjpeg (OpenJPEG compiled to wasm, no native
 * build, nothing downloaded at install). It is not a dependency of the project yet: when it is missing, a
 * JPEG 2000 file is refused with a clear error instead of failing to load this module.
 */
import type { FrameGeometry, SampleWords } from './codecs.ts';

export const OPENJPEG_PACKAGE = '@cornerstonejs/codec-openjpeg';

interface OpenJpegFrameInfo {
  width: number;
  height: number;
  bitsPerSample: number;
  componentCount: number;
  isSigned: boolean;
}

interface OpenJpegDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  decode(): void;
  getFrameInfo(): OpenJpegFrameInfo;
  getDecodedBuffer(): Uint8Array;
  delete?(): void;
}

interface OpenJpegModule {
  J2KDecoder: new () => OpenJpegDecoder;
}

/** Thrown when the optional codec package is not installed. */
export class Jpeg2000UnavailableError extends Error {
  override readonly name = 'Jpeg2000UnavailableError';
}

let codec: Promise<OpenJpegModule> | undefined;

async function loadCodec(): Promise<OpenJpegModule> {
  codec ??= (async () => {
    // The wasm build is several times faster than the asm.js one; both ship in the package.
    for (const specifier of [`${OPENJPEG_PACKAGE}/wasmjs`, OPENJPEG_PACKAGE]) {
      let imported: { default?: unknown };
      try {
        // A variable specifier keeps TypeScript from requiring the package's types at compile time.
        imported = (await import(specifier)) as { default?: unknown };
      } catch {
        continue;
      }
      const factory = imported.default as ((options: object) => Promise<OpenJpegModule>) | undefined;
      if (typeof factory !== 'function') continue;
      // OpenJPEG prints "[INFO] ..." lines for every image through Emscripten's print hooks.
      const silent = () => undefined;
      return factory({ print: silent, printErr: silent });
    }
    throw new Jpeg2000UnavailableError(`JPEG 2000 needs the package ${OPENJPEG_PACKAGE}, which is not installed`);
  })();
  try {
    return await codec;
  } catch (error) {
    codec = undefined;
    throw error;
  }
}

export async function decodeJpeg2000(encoded: Uint8Array, frame: FrameGeometry): Promise<SampleWords> {
  const openjpeg = await loadCodec();
  const decoder = new openjpeg.J2KDecoder();
  try {
    decoder.getEncodedBuffer(encoded.byteLength).set(encoded);
    decoder.decode();
    const info = decoder.getFrameInfo();
    if (info.componentCount !== 1) throw new Error(`JPEG 2000 stream has ${info.componentCount} components`);
    if (info.width !== frame.columns || info.height !== frame.rows) {
      throw new Error(`JPEG 2000 stream is ${info.width}x${info.height}, header says ${frame.columns}x${frame.rows}`);
    }
    const decoded = decoder.getDecodedBuffer();
    const count = frame.rows * frame.columns;
    // Copy out of the wasm heap: the decoder's memory is reused or freed afterwards.
    if (info.bitsPerSample <= 8) return new Uint8Array(decoded.subarray(0, count));
    const words = new Uint16Array(count);
    const view = new DataView(decoded.buffer, decoded.byteOffset, count * 2);
    for (let i = 0; i < count; i++) words[i] = view.getUint16(2 * i, true);
    return words;
  } finally {
    decoder.delete?.();
  }
}
