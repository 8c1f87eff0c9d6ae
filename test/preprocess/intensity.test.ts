import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveConfig } from '../../src/config/index.ts';
import { imagePipeline } from '../../src/data/pipeline.ts';
import { normalizeIntensity, stretchTable } from '../../src/data/preprocess/index.ts';

/** A grey image (R = G = B) from one value per pixel. */
const grey = (values: number[], width = values.length) => ({ data: Uint8Array.from(values.flatMap((v) => [v, v, v])), width, height: values.length / width });
const levels = (image: { data: Uint8Array }) => [...image.data].filter((_, i) => i % 3 === 0);

test('stretch: the 1st and 99th luminance percentiles to 0 and 255, clamped outside', () => {
  // 100 pixels: one at 0, 98 spread over 50..147, one at 255. 1st percentile = level 0 (1 pixel), 99th = 147.
  const values = [0, ...Array.from({ length: 98 }, (_, i) => 50 + i), 255];
  const table = stretchTable(grey(values, 10));
  assert.equal(table[0], 0);
  assert.equal(table[147], 255);
  assert.equal(table[255], 255);
  assert.equal(table[50], Math.round((50 * 255) / 147));
  // A wider percentile window maps 50 to black.
  assert.equal(stretchTable(grey(values, 10), { low: 0.02, high: 0.98 })[50], 0);
  // Colour pixels get the table built from their luminance, per channel: a grey image stays grey.
  const out = normalizeIntensity(grey(values, 10), 'stretch');
  for (let i = 0; i < out.data.length; i += 3) assert.ok(out.data[i] === out.data[i + 1] && out.data[i] === out.data[i + 2]);
  assert.equal(normalizeIntensity(grey(values, 10), 'none').data[3], 50);
  // A single grey level: unchanged rather than divided by zero.
  assert.deepEqual(levels(normalizeIntensity(grey([77, 77]), 'stretch')), [77, 77]);
});

test('intensity in the config and the pipeline: off by default, validated, applied by prepare', () => {
  assert.equal(resolveConfig({}).preprocess.intensity, 'none');
  assert.throws(() => resolveConfig({ preprocess: { intensity: 'equalize' as never } }), /preprocess\.intensity must be one of none, stretch, got "equalize"/);
  const config = resolveConfig({ preprocess: { intensity: 'stretch', grayscale: true } });
  // 10 x2, 20, 30: 1st percentile 10, 99th 30 -> 0, 128 (127.5 rounded), 0, 255.
  assert.deepEqual(levels(imagePipeline(config.preprocess).prepare(grey([10, 20, 10, 30]))), [0, 128, 0, 255]);
  assert.deepEqual(levels(imagePipeline(resolveConfig({}).preprocess).prepare(grey([10, 20, 10, 30]))), [10, 20, 10, 30]);
});
