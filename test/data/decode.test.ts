import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { decodeImage, ImageError, sniffFormat } from '../../src/data/index.ts';
import { bmp, gradient, raw, tempDir } from './fixtures.ts';

const W = 20;
const H = 12;

async function decoded(buffer: Buffer, name: string, size?: number) {
  const path = join(tempDir(), name);
  writeFileSync(path, buffer);
  return decodeImage(path, { size });
}

test('every format and mode becomes 8-bit RGB of the right size', async () => {
  const cases: Array<[string, Promise<Buffer>, string, string]> = [
    ['rgb.png', raw(W, H).png().toBuffer(), 'png', 'RGB'],
    ['rgba.png', raw(W, H).ensureAlpha().png().toBuffer(), 'png', 'RGBA'],
    ['l.png', raw(W, H).toColourspace('b-w').png().toBuffer(), 'png', 'L'],
    ['la.png', raw(W, H).toColourspace('b-w').ensureAlpha().png().toBuffer(), 'png', 'LA'],
    ['rgb16.png', raw(W, H).toColourspace('rgb16').png().toBuffer(), 'png', 'RGB;16'],
    ['rgb.jpg', raw(W, H).jpeg({ quality: 95 }).toBuffer(), 'jpeg', 'RGB'],
    ['cmyk.jpg', raw(W, H).toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer(), 'jpeg', 'CMYK'],
    ['rgb.tif', raw(W, H).tiff({ compression: 'lzw' }).toBuffer(), 'tiff', 'RGB'],
    ['rgb.webp', raw(W, H).webp({ lossless: true }).toBuffer(), 'webp', 'RGB'],
    ['rgb.bmp', Promise.resolve(bmp(W, H)), 'bmp', 'RGB'],
  ];
  const reference = gradient(W, H);
  for (const [name, buffer, format, mode] of cases) {
    const image = await decoded(await buffer, name);
    assert.equal(image.info.format, format, name);
    assert.equal(image.info.mode, mode, name);
    assert.equal(image.width, W, name);
    assert.equal(image.height, H, name);
    assert.equal(image.data.length, W * H * 3, name);
    // The red corner survives every container (CMYK and JPEG within a tolerance; grey ones have no red).
    const [r, g] = [image.data[0]!, image.data[1]!];
    if (mode.startsWith('L')) assert.equal(r, g, `${name}: grey stays grey`);
    else assert.ok(r > 200 && g < 60, `${name}: red corner, got ${r},${g}`);
    if (name === 'rgb.png' || name === 'rgb.bmp' || name === 'rgb.tif' || name === 'rgb.webp') {
      assert.deepEqual(Buffer.from(image.data), reference, `${name}: lossless pixels exact`);
    }
  }
});

test('format is sniffed from content, not the extension', async () => {
  const jpegNamedPng = await decoded(await raw(W, H).jpeg().toBuffer(), 'really-a-jpeg.png');
  assert.equal(jpegNamedPng.info.format, 'jpeg');
  assert.equal(sniffFormat(Buffer.from('hello')), null);
});

test('EXIF orientation is applied', async () => {
  const rotated = await raw(W, H).jpeg().withMetadata({ orientation: 6 }).toBuffer();
  const image = await decoded(rotated, 'orient6.jpg');
  assert.equal(image.info.orientation, 6);
  assert.equal(image.width, H);
  assert.equal(image.height, W);
  // Orientation 6 = rotate 90 degrees clockwise: the red top-left corner ends top-right.
  const topRight = (image.width - 1) * 3;
  assert.ok(image.data[topRight]! > 200 && image.data[topRight + 1]! < 60);
});

test('resizing gives size x size', async () => {
  const image = await decoded(await raw(W, H).png().toBuffer(), 'a.png', 16);
  assert.equal(image.width, 16);
  assert.equal(image.height, 16);
  assert.equal(image.data.length, 16 * 16 * 3);
});

test('bad input is an ImageError naming the file and the reason', async () => {
  const png = await raw(W, H).png().toBuffer();
  const cases: Array<[string, Buffer, RegExp]> = [
    ['empty.png', Buffer.alloc(0), /empty file/],
    ['text.png', Buffer.from('this is not an image at all'), /not a supported image/],
    ['truncated.png', png.subarray(0, Math.floor(png.length / 2)), /cannot decode PNG|corrupt/],
    ['corrupt.jpg', Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(200, 7)]), /corrupt JPEG|cannot decode JPEG/],
    ['short.bmp', bmp(W, H).subarray(0, 60), /truncated BMP/],
  ];
  for (const [name, buffer, reason] of cases) {
    const path = join(tempDir(), name);
    writeFileSync(path, buffer);
    await assert.rejects(decodeImage(path), (error: unknown) => {
      assert.ok(error instanceof ImageError, name);
      assert.equal(error.file, path);
      assert.match(error.reason, reason, name);
      assert.ok(error.message.includes(path));
      return true;
    });
  }
  await assert.rejects(decodeImage('/no/such/file.png'), /no\/such\/file\.png: cannot read: ENOENT/);
});

test('images over the pixel limit are refused before decoding', async () => {
  // A 10000x6000 PNG of one colour is small on disk but 60 megapixels: the header alone must refuse it.
  const big = await sharp({ create: { width: 10000, height: 6000, channels: 3, background: '#000' } }).png({ compressionLevel: 9 }).toBuffer();
  const path = join(tempDir(), 'big.png');
  writeFileSync(path, big);
  await assert.rejects(decodeImage(path), /too many pixels \(10000x6000 = 60000000, limit 50000000\); refused before decoding/);
  await assert.rejects(decodeImage(path, { limits: { maxPixels: 1e9, maxFileBytes: 100 } }), /file too large/);
});
