import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULTS, resolveConfig } from '../../src/config/index.ts';

test('preprocess defaults and validation naming the option', () => {
  assert.deepEqual(DEFAULTS.preprocess, { grayscale: true, jpegReencode: true, jpegQuality: [60, 95], lungCrop: false, lungCropMargin: 0.05 });
  assert.deepEqual(resolveConfig({ preprocess: { lungCrop: true, jpegQuality: [70, 90] } }).preprocess.jpegQuality, [70, 90]);
  assert.throws(() => resolveConfig({ preprocess: { jpegQuality: [95, 60] } }), /preprocess\.jpegQuality must be two integers/);
  assert.throws(() => resolveConfig({ preprocess: { jpegQuality: [60, 101] } }), /preprocess\.jpegQuality/);
  assert.throws(() => resolveConfig({ preprocess: { lungCropMargin: 0.5 } }), /preprocess\.lungCropMargin must be in \[0, 0\.5\)/);
  assert.throws(() => resolveConfig({ preprocess: { grayscale: 'yes' as unknown as boolean } }), /preprocess\.grayscale must be true or false/);
  assert.throws(() => resolveConfig({ preprocess: { crop: true } as never }), /unknown option 'preprocess\.crop'; valid options: grayscale, jpegReencode/);
  assert.equal(resolveConfig({ split: 'source' }).split, 'source');
});
