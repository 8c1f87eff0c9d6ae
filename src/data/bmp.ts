/**
 * Windows BMP decoding. sharp (libvips) has no BMP loader in its prebuilt binaries, and the ImageNet sample
 * photos are BMP, so the few variants that matter are decoded here: uncompressed 24/32-bit and 1/4/8-bit
 * palette, bottom-up (the usual) or top-down rows, BGR(A) order.
 */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 3;
}

export function bmpHeaderSize(buffer: Uint8Array): { width: number; height: number } | null {
  if (buffer.length < 26 || buffer[0] !== 0x42 || buffer[1] !== 0x4d) return null;
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  return { width: Math.abs(view.getInt32(18, true)), height: Math.abs(view.getInt32(22, true)) };
}

export function decodeBmp(buffer: Uint8Array): RawImage {
  if (buffer.length < 54) throw new Error('truncated BMP header');
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const pixelOffset = view.getUint32(10, true);
  const headerSize = view.getUint32(14, true);
  if (headerSize < 40) throw new Error(`unsupported BMP header (size ${headerSize}; OS/2 BMPs are not supported)`);
  const width = view.getInt32(18, true);
  const rawHeight = view.getInt32(22, true);
  const bitsPerPixel = view.getUint16(28, true);
  const compression = view.getUint32(30, true);
  // BI_RGB = 0; BI_BITFIELDS = 3 is accepted for 32-bit with the standard masks.
  if (compression !== 0 && !(compression === 3 && bitsPerPixel === 32)) {
    throw new Error(`unsupported BMP compression ${compression} (only uncompressed BMPs are supported)`);
  }
  if (width <= 0 || rawHeight === 0) throw new Error(`invalid BMP size ${width}x${rawHeight}`);
  const height = Math.abs(rawHeight);
  const bottomUp = rawHeight > 0;
  const stride = Math.ceil((width * bitsPerPixel) / 32) * 4;
  if (pixelOffset + stride * height > buffer.length) throw new Error('truncated BMP pixel data');

  let palette: Uint8Array | null = null;
  if (bitsPerPixel <= 8) {
    const colours = view.getUint32(46, true) || 1 << bitsPerPixel;
    const paletteStart = 14 + headerSize;
    palette = buffer.subarray(paletteStart, paletteStart + colours * 4);
  } else if (bitsPerPixel !== 24 && bitsPerPixel !== 32) {
    throw new Error(`unsupported BMP bit depth ${bitsPerPixel}`);
  }

  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const row = pixelOffset + (bottomUp ? height - 1 - y : y) * stride;
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      if (palette) {
        const bitOffset = x * bitsPerPixel;
        const byte = buffer[row + (bitOffset >> 3)]!;
        const index = (byte >> (8 - bitsPerPixel - (bitOffset & 7))) & ((1 << bitsPerPixel) - 1);
        out[o] = palette[index * 4 + 2] ?? 0;
        out[o + 1] = palette[index * 4 + 1] ?? 0;
        out[o + 2] = palette[index * 4] ?? 0;
      } else {
        const p = row + x * (bitsPerPixel >> 3);
        out[o] = buffer[p + 2]!;
        out[o + 1] = buffer[p + 1]!;
        out[o + 2] = buffer[p]!;
      }
    }
  }
  return { data: out, width, height, channels: 3 };
}
