/**
 * Pixel-data decoders for compressed transfer syntaxes. Each returns the raw stored sample words of one frame
 * (before Bits Stored masking and sign extension), one word per pixel.
 */
import { Decoder as JpegLosslessDecoder } from 'jpeg-lossless-decoder-js';

export type SampleWords = Uint8Array | Uint16Array;

export interface FrameGeometry {
  rows: number;
  columns: number;
  bitsAllocated: number;
}

/** JPEG Lossless Process 14 (any predictor, including SV1), via jpeg-lossless-decoder-js. */
export function decodeJpegLossless(encoded: Uint8Array, frame: FrameGeometry): SampleWords {
  const bytesPerSample = frame.bitsAllocated <= 8 ? 1 : 2;
  const decoder = new JpegLosslessDecoder();
  const padded = padBeforeEndOfImage(encoded);
  const words = decoder.decode(padded.buffer, padded.byteOffset, padded.byteLength, bytesPerSample);
  const expected = frame.rows * frame.columns;
  if (decoder.numComp !== 1) throw new Error(`JPEG stream has ${decoder.numComp} components, expected 1`);
  if (decoder.xDim !== frame.columns || decoder.yDim !== frame.rows) {
    throw new Error(
      `JPEG stream is ${decoder.xDim}x${decoder.yDim}, header says ${frame.columns}x${frame.rows}`,
    );
  }
  if (words.length < expected) throw new Error(`JPEG stream decoded to ${words.length} samples, expected ${expected}`);
  return words.length === expected ? words : words.subarray(0, expected);
}

/**
 * jpeg-lossless-decoder-js 2.1.2 reads a byte ahead while decoding a Huffman code; when that byte is the EOI marker
 * it treats the last pixel as cut off and leaves it 0 (seen on the SV1 chest sample: 1 pixel of 262,144 wrong).
 * Inserting stuffed 0xFF bytes (0xFF 0x00 = eight 1-bits, the JPEG padding bit value) before EOI gives it data to
 * look ahead into; the decoder stops after the last pixel, so the padding is never decoded as a sample.
 */
function padBeforeEndOfImage(encoded: Uint8Array): Uint8Array {
  // DICOM pads fragments to even length, so EOI (FF D9) can be followed by one 0x00 byte.
  let eoi = -1;
  for (let i = encoded.length - 2; i >= Math.max(0, encoded.length - 8); i--) {
    if (encoded[i] === 0xff && encoded[i + 1] === 0xd9) {
      eoi = i;
      break;
    }
  }
  if (eoi < 0) return encoded;
  const padded = new Uint8Array(encoded.length + 4);
  padded.set(encoded.subarray(0, eoi), 0);
  padded.set([0xff, 0x00, 0xff, 0x00], eoi);
  padded.set(encoded.subarray(eoi), eoi + 4);
  return padded;
}

/**
 * DICOM RLE Lossless (PS3.5 annex G): a 64-byte header with up to 15 segment offsets, one PackBits segment per
 * byte plane, most significant byte first. Small enough to implement here rather than add a dependency.
 */
export function decodeRle(encoded: Uint8Array, frame: FrameGeometry): SampleWords {
  const pixels = frame.rows * frame.columns;
  const bytesPerSample = frame.bitsAllocated <= 8 ? 1 : frame.bitsAllocated <= 16 ? 2 : 0;
  if (bytesPerSample === 0) throw new Error(`RLE with Bits Allocated ${frame.bitsAllocated} is not supported`);
  if (encoded.byteLength < 64) throw new Error('RLE header is shorter than 64 bytes');
  const header = new DataView(encoded.buffer, encoded.byteOffset, 64);
  const segmentCount = header.getUint32(0, true);
  if (segmentCount !== bytesPerSample) {
    throw new Error(`RLE frame has ${segmentCount} segments, expected ${bytesPerSample} (one per byte of a sample)`);
  }
  const planes: Uint8Array[] = [];
  for (let s = 0; s < segmentCount; s++) {
    const start = header.getUint32(4 + 4 * s, true);
    const end = s + 1 < segmentCount ? header.getUint32(8 + 4 * s, true) : encoded.byteLength;
    if (start < 64 || end > encoded.byteLength || end < start) throw new Error(`RLE segment ${s} offsets are invalid`);
    planes.push(unpackBits(encoded.subarray(start, end), pixels, s));
  }
  if (bytesPerSample === 1) return planes[0] as Uint8Array;
  const high = planes[0] as Uint8Array;
  const low = planes[1] as Uint8Array;
  const words = new Uint16Array(pixels);
  for (let i = 0; i < pixels; i++) words[i] = ((high[i] as number) << 8) | (low[i] as number);
  return words;
}

function unpackBits(segment: Uint8Array, outputLength: number, segmentIndex: number): Uint8Array {
  const out = new Uint8Array(outputLength);
  let read = 0;
  let written = 0;
  while (written < outputLength && read < segment.length) {
    const control = segment[read++] as number;
    if (control < 128) {
      const count = control + 1;
      if (read + count > segment.length || written + count > outputLength) break;
      out.set(segment.subarray(read, read + count), written);
      read += count;
      written += count;
    } else if (control > 128) {
      const count = 257 - control;
      if (read >= segment.length || written + count > outputLength) break;
      out.fill(segment[read++] as number, written, written + count);
      written += count;
    }
    // 128 is a no-op by definition.
  }
  if (written !== outputLength) {
    throw new Error(`RLE segment ${segmentIndex} decoded to ${written} bytes, expected ${outputLength}`);
  }
  return out;
}
