/** Small images the tests make themselves, in every format and mode the decoder must handle. */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';

const made: string[] = [];
// Each test file runs in its own process: its temporary folders go when it exits.
process.on('exit', () => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** A new temporary folder, removed when the test process exits. */
export function tempDir(prefix = 'covid-ct-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** A w x h RGB gradient with a red square in the top-left corner (so orientation and flips are visible). */
export function gradient(w: number, h: number): Buffer {
  const data = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      const marked = x < w / 4 && y < h / 4;
      data[o] = marked ? 255 : Math.round((x / (w - 1)) * 200);
      data[o + 1] = marked ? 0 : Math.round((y / (h - 1)) * 200);
      data[o + 2] = marked ? 0 : 100;
    }
  }
  return data;
}

export function raw(w: number, h: number) {
  return sharp(gradient(w, h), { raw: { width: w, height: h, channels: 3 } });
}

/** 24-bit bottom-up BMP of the gradient, written by hand (sharp cannot write BMP). */
export function bmp(w: number, h: number): Buffer {
  const pixels = gradient(w, h);
  const stride = Math.ceil((w * 3) / 4) * 4;
  const out = Buffer.alloc(54 + stride * h);
  out.write('BM', 0, 'latin1');
  out.writeUInt32LE(out.length, 2);
  out.writeUInt32LE(54, 10);
  out.writeUInt32LE(40, 14);
  out.writeInt32LE(w, 18);
  out.writeInt32LE(h, 22);
  out.writeUInt16LE(1, 26);
  out.writeUInt16LE(24, 28);
  for (let y = 0; y < h; y++) {
    const row = 54 + (h - 1 - y) * stride;
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      out[row + x * 3] = pixels[i + 2]!;
      out[row + x * 3 + 1] = pixels[i + 1]!;
      out[row + x * 3 + 2] = pixels[i]!;
    }
  }
  return out;
}

/** A tiny dataset folder: training-images and testing-images with two classes of `n` images each. */
export async function makeDataset(root: string, n = 5): Promise<string> {
  const dataset = join(root, 'covid-ct');
  for (const split of ['training-images', 'testing-images']) {
    for (const [cls, shade] of [['CT_COVID', 200], ['CT_NonCOVID', 60]] as const) {
      const dir = join(dataset, split, cls);
      mkdirSync(dir, { recursive: true });
      for (let i = 0; i < n; i++) {
        const png = await sharp({ create: { width: 40 + i, height: 30, channels: 3, background: { r: shade, g: shade - i * 5, b: shade } } }).png().toBuffer();
        writeFileSync(join(dir, `2020.01.0${i % 3}.1000${i % 3}-p1-${i + 1}.png`), png);
      }
    }
  }
  return dataset;
}
