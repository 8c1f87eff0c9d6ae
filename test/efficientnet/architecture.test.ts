// EfficientNet-B0's layer list against the Keras-derived fixture and the facts Keras reports.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { buildEfficientNetB0, correctPad, EfficientNetError, KERAS_EFFICIENTNET_B0 } from '../../src/engine/efficientnet/model.ts';
import { summarizeModel, formatSummary } from '../../src/engine/summary.ts';
import { useTfjsBackend } from '../engine/helpers.ts';
import { kerasEfficientNetB0Layers } from './keras-b0-layers.ts';

before(async () => {
  await useTfjsBackend();
});

for (const includeTop of [false, true]) {
  test(`include_top=${includeTop}: every layer's name, type, output shape and parameters match Keras's`, () => {
    const model = buildEfficientNetB0({ includeTop });
    try {
      const summary = summarizeModel(model);
      const actual = summary.layers.map((l) => [l.name, l.type, l.outputShape.slice(1), l.params]);
      assert.deepEqual(actual, kerasEfficientNetB0Layers(includeTop));
    } finally {
      model.dispose();
    }
  });
}

test('the fixture and the model agree with the facts Keras reports for EfficientNetB0', () => {
  const noTop = kerasEfficientNetB0Layers(false);
  const sum = (rows: ReturnType<typeof kerasEfficientNetB0Layers>) => rows.reduce((s, r) => s + r[3], 0);
  assert.equal(sum(noTop), 4_049_571);
  assert.equal(sum(kerasEfficientNetB0Layers(true)), 5_330_571);
  assert.equal(noTop.length, 237);
  assert.equal(noTop[221]![0], 'block7a_expand_conv');
  assert.equal(noTop[220]![0], 'block6d_add');

  const model = buildEfficientNetB0();
  try {
    const summary = summarizeModel(model);
    assert.equal(summary.totalParams, KERAS_EFFICIENTNET_B0.paramsNoTop);
    assert.equal(summary.trainableParams, 4_007_548);
    assert.equal(summary.nonTrainableParams, 42_023);
    assert.equal(model.layers.length, KERAS_EFFICIENTNET_B0.layersNoTop);
    assert.equal(model.layers[KERAS_EFFICIENTNET_B0.block7aIndex]!.name, KERAS_EFFICIENTNET_B0.block7aLayer);
    assert.deepEqual(model.outputs[0]!.shape, [null, 7, 7, 1280]);
    const byName = new Map(summary.layers.map((l) => [l.name, l.outputShape.slice(1)]));
    // Keras's ZeroPadding2D before each stride-2 convolution (correct_pad).
    assert.deepEqual(byName.get('stem_conv_pad'), [225, 225, 3]);
    assert.deepEqual(byName.get('block2a_dwconv_pad'), [113, 113, 96]);
    assert.deepEqual(byName.get('block3a_dwconv_pad'), [59, 59, 144]);
    assert.deepEqual(byName.get('block4a_dwconv_pad'), [29, 29, 240]);
    assert.deepEqual(byName.get('block6a_dwconv_pad'), [17, 17, 672]);
    const text = formatSummary(summary);
    assert.match(text, /Total params: 4,049,571/);
    assert.match(text, /221 {2}block7a_expand_conv +Conv2D +\(None, 7, 7, 1152\) +221,184/);
  } finally {
    model.dispose();
  }
  const top = buildEfficientNetB0({ includeTop: true });
  assert.equal(top.countParams(), KERAS_EFFICIENTNET_B0.paramsWithTop);
  top.dispose();
});

test('correct_pad: k // 2 after, one less before an even size', () => {
  assert.deepEqual(correctPad(224, 224, 3), [[0, 1], [0, 1]]);
  assert.deepEqual(correctPad(56, 56, 5), [[1, 2], [1, 2]]);
  assert.deepEqual(correctPad(15, 14, 3), [[1, 1], [0, 1]]);
});

test('swish activations, squeeze-and-excitation gates, and drop-connect as Dropout with noise shape (None, 1, 1, 1)', () => {
  const model = buildEfficientNetB0();
  try {
    const config = (name: string) => model.getLayer(name).getConfig() as Record<string, unknown>;
    assert.equal(config('stem_activation').activation, 'swish');
    assert.equal(config('block3b_se_reduce').activation, 'swish');
    assert.equal(config('block3b_se_expand').activation, 'sigmoid');
    const drops = model.layers.filter((l) => l.getClassName() === 'Dropout');
    assert.equal(drops.length, 9);
    for (const drop of drops) {
      const c = drop.getConfig() as { rate: number; noiseShape: unknown };
      assert.deepEqual(c.noiseShape, [null, 1, 1, 1]);
    }
    // Block b of 16 drops 0.2 * b / 16: block2b is b = 2.
    assert.equal((config('block2b_drop').rate as number).toFixed(6), (0.2 * 2 / 16).toFixed(6));
    assert.equal((config('block6d_drop').rate as number).toFixed(6), (0.2 * 14 / 16).toFixed(6));
  } finally {
    model.dispose();
  }
});

test('drop-connect keeps or drops each example whole in training, and is the identity in inference', () => {
  const drop = tfl.layers.dropout({ rate: 0.5, noiseShape: [null, 1, 1, 1] as unknown as number[], seed: 1 });
  const x = tf.ones([64, 4, 4, 3]);
  const trained = drop.apply(x, { training: true }) as tf.Tensor;
  const values = tf.reshape(trained, [64, 48]).arraySync() as number[][];
  for (const row of values) assert.ok(row.every((v) => v === row[0]) && (row[0] === 0 || row[0] === 2), `row ${row.slice(0, 3).join(',')}`);
  assert.ok(values.some((r) => r[0] === 0) && values.some((r) => r[0] === 2));
  const inferred = drop.apply(x, { training: false }) as tf.Tensor;
  assert.equal(tf.sum(inferred).dataSync()[0], 64 * 48);
  tf.dispose([x, trained, inferred]);
});

test('options are validated with errors naming them', () => {
  assert.throws(() => buildEfficientNetB0({ inputShape: [16, 16, 3] }), (e: Error) => e instanceof EfficientNetError && /inputShape/.test(e.message));
  assert.throws(() => buildEfficientNetB0({ pooling: 'sum' as never }), /pooling must be one of avg, max, none/);
  assert.throws(() => buildEfficientNetB0({ dropConnectRate: 1 }), /dropConnectRate/);
  assert.throws(() => buildEfficientNetB0({ width: 2 } as never), /unknown option 'width'; valid options: includeTop/);
});
