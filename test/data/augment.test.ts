import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULTS } from '../../src/config/index.ts';
import { applyAugment, augmenter, IDENTITY, Rng, sampleAugment } from '../../src/data/index.ts';
import { mirrorViews } from '../../src/data/augment.ts';
import { gradient } from './fixtures.ts';

const W = 24;
const H = 16;
const image = { data: new Uint8Array(gradient(W, H)), width: W, height: H };
const pixel = (data: Uint8Array, x: number, y: number) => Array.from(data.subarray((y * W + x) * 3, (y * W + x) * 3 + 3));

test('identity leaves the pixels unchanged', () => {
  assert.deepEqual(applyAugment(image, IDENTITY), image.data);
});

test('flips are exact mirror images', () => {
  const h = applyAugment(image, { ...IDENTITY, flipHorizontal: true });
  const v = applyAugment(image, { ...IDENTITY, flipVertical: true });
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      assert.deepEqual(pixel(h, x, y), pixel(image.data, W - 1 - x, y));
      assert.deepEqual(pixel(v, x, y), pixel(image.data, x, H - 1 - y));
    }
  }
});

test("TTA's mirror views are the horizontal and vertical flips, byte for byte", () => {
  const [horizontal, vertical] = mirrorViews(image);
  assert.deepEqual(horizontal!.data, applyAugment(image, { ...IDENTITY, flipHorizontal: true }));
  assert.deepEqual(vertical!.data, applyAugment(image, { ...IDENTITY, flipVertical: true }));
  assert.notDeepEqual(horizontal!.data, image.data);
  assert.deepEqual([horizontal!.width, horizontal!.height, vertical!.width, vertical!.height], [W, H, W, H]);
});

test('drawn parameters stay within the published bounds', () => {
  const rng = new Rng(1);
  const seen = { h: 0, v: 0 };
  for (let i = 0; i < 2000; i++) {
    const p = sampleAugment(DEFAULTS.augment, rng);
    assert.ok(Math.abs(p.angle) <= 0.05 * 2 * Math.PI);
    assert.ok(p.zoom >= 0.95 && p.zoom <= 1.05);
    assert.ok(Math.abs(p.translateX) <= 0.05 && Math.abs(p.translateY) <= 0.05);
    assert.ok(p.contrast >= 0.95 && p.contrast <= 1.05);
    seen.h += Number(p.flipHorizontal);
    seen.v += Number(p.flipVertical);
  }
  assert.ok(seen.h > 900 && seen.h < 1100 && seen.v > 900 && seen.v < 1100, 'flips about half the time');
  const off = sampleAugment({ ...DEFAULTS.augment, horizontalFlip: false, rotation: 0 }, new Rng(1));
  assert.equal(off.flipHorizontal, false);
  assert.equal(off.angle, 0);
});

test('a 90-degree rotation moves the centre cross as expected; small rotations keep the centre', () => {
  const square = { data: new Uint8Array(9 * 9 * 3), width: 9, height: 9 };
  square.data.set([255, 255, 255], (4 * 9 + 8) * 3); // a white pixel at the middle of the right edge
  const turned = applyAugment(square, { ...IDENTITY, angle: Math.PI / 2 });
  const lit = [];
  for (let i = 0; i < 81; i++) if (turned[i * 3]! > 128) lit.push([i % 9, Math.floor(i / 9)]);
  assert.equal(lit.length, 1);
  assert.ok(lit[0]![0] === 4, 'still on the vertical centre line after a quarter turn');
});

test('same seed, same pixels; another seed, other pixels', () => {
  const augment = augmenter(DEFAULTS.augment);
  const a = augment(image, new Rng(5));
  const b = augment(image, new Rng(5));
  const c = augment(image, new Rng(6));
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});
