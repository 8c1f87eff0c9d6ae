import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lungCrop, lungMask, lungMaskHu } from '../../src/data/preprocess/index.ts';
import { iou, phantomGeometry, phantomValues, toRgb } from './phantom.ts';

const SIZE = 160;

test('lungMask: two dark ellipses in a bright one, with noise: IoU >= 0.9 with the true lungs', () => {
  for (const seed of [1, 2, 3]) {
    const { values, truth } = phantomValues(SIZE, { outside: 5, body: 190, lung: 45 }, 25, seed);
    const result = lungMask(toRgb(values, SIZE));
    assert.equal(result.found, true, result.reason);
    assert.equal(result.components, 2);
    const score = iou(result.mask, truth);
    assert.ok(score >= 0.9, `seed ${seed}: IoU ${score.toFixed(3)}`);
    // The box hugs the two lungs.
    const { lungs } = phantomGeometry(SIZE);
    assert.ok(Math.abs(result.box.x - (lungs[0].cx - lungs[0].rx)) <= 3, `box x ${result.box.x}`);
    assert.ok(Math.abs(result.box.x + result.box.width - (lungs[1].cx + lungs[1].rx)) <= 3, `box right ${result.box.x + result.box.width}`);
  }
});

test('lungMaskHu: the same phantom in Hounsfield units', () => {
  const { values, truth } = phantomValues(SIZE, { outside: -1000, body: 40, lung: -850 }, 60, 4);
  const result = lungMaskHu(values, SIZE, SIZE);
  assert.equal(result.found, true, result.reason);
  assert.ok(iou(result.mask, truth) >= 0.9, `IoU ${iou(result.mask, truth)}`);
  assert.throws(() => lungMaskHu(values, SIZE + 1, SIZE), /values for/);
});

test('lungCrop: crops to the lungs with the margin and resizes back to the input size', () => {
  const { values } = phantomValues(SIZE, { outside: 5, body: 190, lung: 45 }, 25, 5);
  const image = toRgb(values, SIZE);
  const crop = lungCrop(image, { margin: 0.05 });
  assert.equal(crop.found, true);
  assert.equal(crop.warning, undefined);
  assert.equal(crop.image.width, SIZE);
  assert.equal(crop.image.height, SIZE);
  assert.equal(crop.image.data.length, SIZE * SIZE * 3);
  const mask = lungMask(image);
  assert.equal(crop.box.x, Math.max(0, mask.box.x - 8));
  assert.equal(crop.box.y, Math.max(0, mask.box.y - 8));
  assert.ok(crop.box.width < SIZE && crop.box.height < SIZE);
});

test('fallback: no lungs (solid body, or an empty image) gives the whole image and a warning', () => {
  const { values } = phantomValues(SIZE, { outside: 5, body: 190, lung: 45 }, 25, 6, false);
  const image = toRgb(values, SIZE);
  const mask = lungMask(image);
  assert.equal(mask.found, false);
  assert.match(mask.reason!, /no large dark region inside the body/);
  assert.deepEqual(mask.box, { x: 0, y: 0, width: SIZE, height: SIZE });
  assert.equal(mask.mask.reduce((a, b) => a + b, 0), 0);
  const crop = lungCrop(image, { margin: 0.05 });
  assert.equal(crop.found, false);
  assert.equal(crop.image, image);
  assert.match(crop.warning!, /no plausible lungs .*whole image/);

  const black = { data: new Uint8Array(32 * 32 * 3), width: 32, height: 32 };
  assert.equal(lungMask(black).found, false);
  const hu = new Float32Array(32 * 32).fill(-1000);
  assert.match(lungMaskHu(hu, 32, 32).reason!, /no bright body region/);
  assert.throws(() => lungCrop(image, { margin: 0.7 }), /margin must be in/);
});

test('lungs cut by the image border are not lungs', () => {
  // Shift the phantom so the left lung leaves the frame; only the right lung remains a lung.
  const { values } = phantomValues(SIZE, { outside: 5, body: 190, lung: 45 }, 10, 7);
  const shift = Math.round(SIZE * 0.3);
  const shifted = new Float32Array(SIZE * SIZE);
  for (let y = 0; y < SIZE; y++) for (let x = 0; x < SIZE; x++) shifted[y * SIZE + x] = values[y * SIZE + Math.min(SIZE - 1, x + shift)]!;
  const result = lungMask(toRgb(shifted, SIZE));
  assert.equal(result.found, true, result.reason);
  assert.equal(result.components, 1);
  assert.ok(result.box.x > 0);
});
