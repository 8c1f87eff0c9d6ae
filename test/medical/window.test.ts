import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MEDICAL_DEFAULTS, readDicomSlice, sliceToRgb, windowToRgb } from '../../src/data/medical/index.ts';
import { sample } from './samples.ts';

test('lung window by default: bounds, midpoint, R = G = B, HWC length', () => {
  assert.deepEqual(MEDICAL_DEFAULTS.window, { level: -600, width: 1500 });
  const hu = Float32Array.from([-3024, -1351, -1350, -600, 149, 150, 3000, Number.NaN]);
  const rgb = windowToRgb(hu, 4, 2);
  assert.equal(rgb.length, 4 * 2 * 3);
  const grey = [...Array(8).keys()].map((i) => {
    assert.equal(rgb[3 * i], rgb[3 * i + 1]);
    assert.equal(rgb[3 * i], rgb[3 * i + 2]);
    return rgb[3 * i];
  });
  assert.equal(grey[0], 0);
  assert.equal(grey[1], 0);
  assert.ok((grey[2] as number) <= 1);
  assert.ok(Math.abs((grey[3] as number) - 127.5) <= 1);
  assert.ok((grey[4] as number) >= 254);
  assert.equal(grey[5], 255);
  assert.equal(grey[6], 255);
  assert.equal(grey[7], 0, 'NaN is black, not garbage');
});

test('custom window, inversion, and invalid input', () => {
  const hu = Float32Array.from([-160, 40, 240]);
  assert.deepEqual([...windowToRgb(hu, 3, 1, { window: { level: 40, width: 400 } })].filter((_, i) => i % 3 === 0), [
    0, 128, 255,
  ]);
  assert.deepEqual([...windowToRgb(hu, 3, 1, { window: { level: 40, width: 400 }, invert: true })].filter((_, i) => i % 3 === 0), [
    255, 127, 0,
  ]);
  assert.throws(() => windowToRgb(hu, 2, 1), RangeError);
  assert.throws(() => windowToRgb(hu, 3, 1, { window: { level: 0, width: 0 } }), RangeError);
});

test("sliceToRgb with 'file' uses the file's window, or the default with a warning", async () => {
  const chest = await readDicomSlice(sample('ct-chest-explicit-le.dcm'));
  const fromFile = sliceToRgb(chest, { window: 'file' });
  assert.deepEqual(fromFile.window, { level: 40, width: 400 });
  assert.equal(fromFile.warning, undefined);
  assert.equal(fromFile.rgb.length, 512 * 512 * 3);
  // Centre pixel is 67 HU: mid-grey in the soft-tissue window, near white in the lung window.
  const centre = 3 * (256 * 512 + 256);
  assert.ok(Math.abs((fromFile.rgb[centre] as number) - Math.round((67 - 39.5) / 399 * 255 + 127.5)) <= 1);
  const lung = sliceToRgb(chest);
  assert.deepEqual(lung.window, MEDICAL_DEFAULTS.window);
  assert.ok((lung.rgb[centre] as number) > 200);

  const small = await readDicomSlice(sample('ct-small-explicit-le.dcm'));
  const fallback = sliceToRgb(small, { window: 'file' });
  assert.deepEqual(fallback.window, MEDICAL_DEFAULTS.window);
  assert.match(fallback.warning ?? '', /no window in the file/);
});
