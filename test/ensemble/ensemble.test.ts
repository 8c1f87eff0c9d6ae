import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolveConfig } from '../../src/config/index.ts';
import { ImageCache, listSplit, loadImages } from '../../src/data/index.ts';
import { evaluateModel } from '../../src/evaluation/evaluate-model.ts';
import { youdenThreshold } from '../../src/evaluation/metrics.ts';
import { averageValidation, createEnsemble, poolValidation } from '../../src/inference/ensemble.ts';
import { loadModel } from '../../src/inference/model.ts';
import { tempDir } from '../data/fixtures.ts';
import { linkedDataset, trainLinked } from '../fixtures/covid-ct.ts';

const rows = (probabilities: number[]) => probabilities.map((probability, i) => ({ path: `v/${i}.png`, label: i < 2 ? 1 : 0, probability }));

test('averaging: member probabilities per image; members must share their validation images', () => {
  const averaged = averageValidation([
    { dir: 'a', rows: rows([0.9, 0.4, 0.2, 0.6]) },
    { dir: 'b', rows: rows([0.7, 0.8, 0.0, 0.2]) },
  ]);
  assert.deepEqual(averaged.map((r) => Number(r.probability.toFixed(6))), [0.8, 0.6, 0.1, 0.4]);
  assert.throws(() => averageValidation([{ dir: 'a', rows: rows([0.1, 0.2, 0.3, 0.4]) }, { dir: 'b', rows: rows([0.1, 0.2, 0.3]) }]), /b was validated on other images than a/);
});

test('pooling: members validated on different images; an image held out by several gets their mean; labels must agree', () => {
  const row = (i: number, label: number, probability: number) => ({ path: `v/${i}.png`, label, probability });
  const pooled = poolValidation([
    { dir: 'a', rows: [row(0, 1, 0.9), row(1, 0, 0.3), row(2, 1, 0.5)] },
    { dir: 'b', rows: [row(2, 1, 0.7), row(3, 0, 0.1)] },
  ]);
  assert.deepEqual(pooled.map((r) => [r.path, r.label, Number(r.probability.toFixed(6))]), [['v/0.png', 1, 0.9], ['v/1.png', 0, 0.3], ['v/2.png', 1, 0.6], ['v/3.png', 0, 0.1]]);
  assert.throws(() => poolValidation([{ dir: 'a', rows: [row(0, 1, 0.9)] }, { dir: 'b', rows: [row(0, 0, 0.2)] }]), /v\/0\.png is labelled 0 by b and 1 by a/);
});

test('createEnsemble: the threshold is Youden on the averaged validation scores', async () => {
  const root = tempDir();
  const card = { format: 'covid-ct-model/1', id: 'm', backbone: { name: 'mobilenet-v2', fineTuneAt: 'block_16' }, imageSize: 256, classes: [], seed: 1 };
  for (const [name, p] of [['a', [0.9, 0.4, 0.2, 0.6]], ['b', [0.7, 0.8, 0.0, 0.2]]] as const) {
    mkdirSync(join(root, name));
    writeFileSync(join(root, name, 'model.json'), JSON.stringify({ ...card, id: name }));
    writeFileSync(join(root, name, 'validation-predictions.json'), JSON.stringify(rows([...p])));
  }
  const ensemble = await createEnsemble([join(root, 'a'), join(root, 'b')], join(root, 'ens'));
  // Averaged: positives 0.8, 0.6; negatives 0.1, 0.4 -> every threshold in (0.4, 0.6] separates; Youden takes 0.6.
  assert.ok(Math.abs(ensemble.threshold - youdenThreshold([1, 1, 0, 0], [0.8, 0.6, 0.1, 0.4]).threshold) < 1e-12);
  assert.ok(Math.abs(ensemble.threshold - 0.6) < 1e-12);
  assert.equal(ensemble.validation.auc, 1);
  assert.deepEqual(ensemble.members, ['../a', '../b']);
  await assert.rejects(createEnsemble([join(root, 'a')], join(root, 'one')), /at least two members/);

  // Members on different splits: refused unless pooled; pooled, the threshold is Youden on the pooled scores.
  mkdirSync(join(root, 'c'));
  writeFileSync(join(root, 'c', 'model.json'), JSON.stringify({ ...card, id: 'c' }));
  writeFileSync(join(root, 'c', 'validation-predictions.json'), JSON.stringify([{ path: 'v/9.png', label: 0, probability: 0.5 }, { path: 'v/0.png', label: 1, probability: 0.3 }]));
  await assert.rejects(createEnsemble([join(root, 'a'), join(root, 'c')], join(root, 'shared')), /--validation pooled/);
  const pooled = await createEnsemble([join(root, 'a'), join(root, 'c')], join(root, 'pooled'), 'pooled');
  // Pooled: v/0 (1) 0.6, v/1 (1) 0.4, v/2 (0) 0.2, v/3 (0) 0.6, v/9 (0) 0.5.
  assert.ok(Math.abs(pooled.threshold - youdenThreshold([1, 1, 0, 0, 0], [0.6, 0.4, 0.2, 0.6, 0.5]).threshold) < 1e-12);
  assert.equal(pooled.validation.images, 5);
  assert.match(pooled.thresholdRule, /pooled validation scores/);
});

test('two members -> ensemble -> evaluate and predict; TTA flips averages the mirrored views', async () => {
  const root = linkedDataset(8, 4);
  const members = [join(root, 'm1'), join(root, 'm2')];
  await trainLinked(root, members[0]!, { seed: 1 });
  await trainLinked(root, members[1]!, { seed: 2 });
  const ensembleDir = join(root, 'ensemble');
  await createEnsemble(members, ensembleDir);

  const config = resolveConfig({ data: { cacheDir: join(root, 'cache') } });
  const cache = new ImageCache(config.data.cacheDir, config.data);
  const { images } = await loadImages(listSplit(join(root, 'covid-ct'), 'test', config), cache, { size: 256 });
  // The members were trained with the default test-time augmentation, recorded in their cards and used unless
  // an option says otherwise; the averaging is checked without it, then TTA against hand-flipped images.
  const own = await loadModel(members[0]!);
  assert.equal(own.tta, 'flips');
  await own.dispose();
  const ensemble = await loadModel(ensembleDir, { tta: 'none' });
  const single = await Promise.all(members.map((m) => loadModel(m, { tta: 'none' })));
  try {
    const together = await ensemble.predict(images);
    const apart = await Promise.all(single.map((m) => m.predict(images)));
    together.forEach((p, i) => assert.ok(Math.abs(p - (apart[0]![i]! + apart[1]![i]!) / 2) < 1e-6));

    const flip = (image: (typeof images)[number], horizontal: boolean) => {
      const out = new Uint8Array(image.data.length);
      for (let y = 0; y < 256; y++) for (let x = 0; x < 256; x++) {
        const from = ((horizontal ? y : 255 - y) * 256 + (horizontal ? 255 - x : x)) * 3;
        out.set(image.data.subarray(from, from + 3), (y * 256 + x) * 3);
      }
      return { data: out, width: 256, height: 256 };
    };
    const tta = await loadModel(members[0]!, { tta: 'flips' });
    try {
      const averaged = await tta.predict(images);
      const h = await single[0]!.predict(images.map((image) => flip(image, true)));
      const v = await single[0]!.predict(images.map((image) => flip(image, false)));
      averaged.forEach((p, i) => assert.ok(Math.abs(p - (apart[0]![i]! + h[i]! + v[i]!) / 3) < 1e-6));
    } finally {
      await tta.dispose();
    }
  } finally {
    await ensemble.dispose();
    await Promise.all(single.map((m) => m.dispose()));
  }
  const report = await evaluateModel(ensembleDir, { config, datasetDir: join(root, 'covid-ct'), cache });
  assert.equal(report.evaluation.size, 8);
});
