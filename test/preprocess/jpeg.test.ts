import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../src/data/random.ts';
import { drawJpegQuality, jpegReencode } from '../../src/data/preprocess/index.ts';
import { phantomValues, toRgb } from './phantom.ts';

const image = toRgb(phantomValues(96, { outside: 5, body: 190, lung: 45 }, 20, 1).values, 96);
const range = { minQuality: 60, maxQuality: 95 };

test('jpegReencode: same seed, same quality and same bytes', async () => {
  const a = await jpegReencode(image, new Rng(11), range);
  const b = await jpegReencode(image, new Rng(11), range);
  assert.equal(a.quality, b.quality);
  assert.ok(a.quality >= 60 && a.quality <= 95);
  assert.deepEqual(Buffer.from(a.data), Buffer.from(b.data));
  assert.equal(a.width, 96);
  assert.equal(a.height, 96);
  assert.equal(a.data.length, 96 * 96 * 3);
  // Lossy: not the input, but close to it.
  assert.notDeepEqual(Buffer.from(a.data), Buffer.from(image.data));
  let error = 0;
  for (let i = 0; i < a.data.length; i++) error += Math.abs(a.data[i]! - image.data[i]!);
  assert.ok(error / a.data.length < 20, `mean absolute error ${error / a.data.length}`);
});

test('jpegReencode: a different seed draws a different quality and gives different pixels', async () => {
  const qa = drawJpegQuality(new Rng(11), range);
  const qb = drawJpegQuality(new Rng(12), range);
  assert.notEqual(qa, qb);
  const a = await jpegReencode(image, new Rng(11), range);
  const b = await jpegReencode(image, new Rng(12), range);
  assert.equal(a.quality, qa);
  assert.equal(b.quality, qb);
  assert.notDeepEqual(Buffer.from(a.data), Buffer.from(b.data));
});

test('drawJpegQuality: covers the inclusive range and refuses bad ranges', () => {
  const rng = new Rng(3);
  const seen = new Set<number>();
  for (let i = 0; i < 2000; i++) seen.add(drawJpegQuality(rng, { minQuality: 60, maxQuality: 62 }));
  assert.deepEqual([...seen].sort(), [60, 61, 62]);
  assert.throws(() => drawJpegQuality(rng, { minQuality: 95, maxQuality: 60 }), /quality range/);
  assert.throws(() => drawJpegQuality(rng, { minQuality: 0, maxQuality: 60 }), /quality range/);
});
