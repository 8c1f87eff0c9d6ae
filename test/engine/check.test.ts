import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runBackboneCheck, shortLabel } from '../../src/engine/check.ts';

test('backbone check: mobilenet-v2 classifies the sample photos with the verified top-1 classes', async () => {
  const result = await runBackboneCheck('mobilenet-v2');
  assert.equal(result.images.length, 4);
  for (const image of result.images) {
    assert.equal(image.top5.length, 5);
    assert.equal(shortLabel(image.top5[0]!.label), image.expected, `${image.file}: ${image.top5.map((p) => p.label).join(' | ')}`);
  }
  assert.ok(result.ok);
});

test('backbone check: a backbone without an ImageNet classifier, or an unknown one, is refused by name', async () => {
  await assert.rejects(runBackboneCheck('mobilenet-v1'), /no ImageNet classifier/);
  await assert.rejects(runBackboneCheck('resnet-50'), /unknown backbone 'resnet-50'; valid names: mobilenet-v2, mobilenet-v1/);
});
