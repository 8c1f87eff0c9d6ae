import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LUMA_WEIGHTS, toGrayscale } from '../../src/data/preprocess/index.ts';

test('toGrayscale: BT.601 luminance, rounded, in all three channels', () => {
  const image = { data: Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 255, 255, 255, 7, 7, 7]), width: 3, height: 2 };
  const grey = toGrayscale(image);
  // 0.299*255 = 76.245; 0.587*255 = 149.685; 0.114*255 = 29.07; 2.99 + 11.74 + 3.42 = 18.15; white stays 255; grey stays.
  assert.deepEqual([...grey.data], [76, 76, 76, 150, 150, 150, 29, 29, 29, 18, 18, 18, 255, 255, 255, 7, 7, 7]);
  assert.equal(grey.width, 3);
  assert.equal(grey.height, 2);
  assert.deepEqual(LUMA_WEIGHTS, { r: 0.299, g: 0.587, b: 0.114 });
  // Pure: the input is untouched.
  assert.deepEqual([...image.data.subarray(0, 3)], [255, 0, 0]);
});
