import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Rng } from '../../src/data/random.ts';
import {
  bootstrapAucCi,
  bootstrapAucDifference,
  classificationReport,
  formatFixed,
  MetricError,
  metricsAtThreshold,
  percentile,
  predict,
  rocAuc,
  rocCurve,
  youdenThreshold,
} from '../../src/evaluation/index.ts';

interface SklearnRow {
  precision: number;
  recall: number;
  'f1-score': number;
  support: number;
}
interface SklearnCase {
  name: string;
  labels: number[];
  scores: number[];
  threshold: number;
  target_names: [string, string];
  digits: number;
  confusion: { tp: number; fp: number; tn: number; fn: number };
  report_text: string;
  report_dict: Record<string, SklearnRow> & { accuracy: number };
  zero_division_warned: boolean;
  roc: { fpr: number[]; tpr: number[]; thresholds_after_first: number[] };
  auc: number;
  youden: { threshold: number; j: number };
}

const fixtures = JSON.parse(
  readFileSync(new URL('./fixtures/sklearn_cases.json', import.meta.url), 'utf8'),
) as { sklearn_version: string; cases: SklearnCase[] };

function assertClose(actual: number, expected: number, message: string, tolerance = 1e-12): void {
  assert.ok(Math.abs(actual - expected) <= tolerance, `${message}: ${actual} != ${expected}`);
}

test('confusion counts and rates on a hand-worked case', () => {
  // labels:  1    1    1    0    0    0    0
  // probs:  .9   .6   .3   .7   .2   .1   .5   -> at 0.5: TP 2, FN 1, FP 2 (.7 and .5, since >=), TN 2
  const m = metricsAtThreshold([1, 1, 1, 0, 0, 0, 0], [0.9, 0.6, 0.3, 0.7, 0.2, 0.1, 0.5], 0.5);
  assert.deepEqual({ tp: m.tp, fp: m.fp, tn: m.tn, fn: m.fn }, { tp: 2, fp: 2, tn: 2, fn: 1 });
  assertClose(m.accuracy, 4 / 7, 'accuracy');
  assertClose(m.sensitivity, 2 / 3, 'sensitivity');
  assertClose(m.specificity, 2 / 4, 'specificity');
  assertClose(m.typeI, 2 / 4, 'type I');
  assertClose(m.typeII, 1 / 3, 'type II');
  assert.deepEqual(predict([0.5, 0.49, 1], 0.5), [1, 0, 1]);
});

test('rates over a one-class split are 0, not NaN', () => {
  const m = metricsAtThreshold([1, 1], [0.9, 0.2], 0.5);
  assert.equal(m.specificity, 0);
  assert.equal(m.typeI, 0);
  assert.equal(m.sensitivity, 0.5);
});

test('AUC with ties counts tied pairs one half', () => {
  // Pairs (pos, neg): (.8,.8) tie = 0.5, (.8,.2) = 1, (.4,.8) = 0, (.4,.2) = 1 -> 2.5 / 4
  assert.equal(rocAuc([1, 1, 0, 0], [0.8, 0.4, 0.8, 0.2]), 0.625);
  assert.equal(rocAuc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]), 0.5);
  assert.equal(rocAuc([0, 0, 1], [0.1, 0.2, 0.3]), 1);
  assert.equal(rocAuc([1, 0], [0.1, 0.2]), 0);
  const roc = rocCurve([1, 1, 0, 0], [0.8, 0.4, 0.8, 0.2]);
  assert.deepEqual(roc.thresholds, [Infinity, 0.8, 0.4, 0.2]);
  assert.deepEqual(roc.fpr, [0, 0.5, 0.5, 1]);
  assert.deepEqual(roc.tpr, [0, 0.5, 1, 1]);
});

test('a single-class or empty set is a clear error, never NaN', () => {
  for (const [labels, scores] of [
    [[1, 1, 1], [0.2, 0.5, 0.9]],
    [[0, 0], [0.2, 0.5]],
    [[], []],
  ] as Array<[number[], number[]]>) {
    assert.throws(() => rocAuc(labels, scores), MetricError);
    assert.throws(() => rocCurve(labels, scores), MetricError);
    assert.throws(() => bootstrapAucCi(labels, scores), MetricError);
    assert.throws(() => youdenThreshold(labels, scores), MetricError);
  }
  assert.throws(() => rocAuc([1, 1, 1], [0.2, 0.5, 0.9]), /only one class/);
  assert.throws(() => rocAuc([], []), /empty/);
  assert.throws(() => metricsAtThreshold([], []), /empty/);
  assert.throws(() => classificationReport([], []), /empty/);
  assert.throws(() => rocAuc([0, 1], [0.5, NaN]), /finite/);
  assert.throws(() => rocAuc([0, 2], [0.5, 0.4]), /0 or 1/);
  assert.throws(() => rocAuc([0, 1], [0.5]), /length/);
});

test('Youden threshold: maximum J, ties to the highest threshold', () => {
  // At 0.7: TPR 2/3, FPR 0 -> J 2/3; at 0.4: TPR 1, FPR 1/3 -> J 2/3 too; the higher threshold wins.
  const choice = youdenThreshold([1, 1, 1, 0, 0, 0], [0.9, 0.7, 0.4, 0.5, 0.2, 0.1]);
  assert.equal(choice.threshold, 0.7);
  assertClose(choice.j, 2 / 3, 'J');
  assertClose(choice.sensitivity, 2 / 3, 'sensitivity');
  assert.equal(choice.specificity, 1);
  const separable = youdenThreshold([0, 0, 1, 1], [0.1, 0.3, 0.6, 0.8]);
  assert.deepEqual(separable, { threshold: 0.6, j: 1, sensitivity: 1, specificity: 1 });
});

test('bootstrap CI: deterministic with a seed, contains the estimate, counts skipped resamples', () => {
  const c = fixtures.cases.find((x) => x.name === 'continuous')!;
  const a = bootstrapAucCi(c.labels, c.scores, { seed: 7 });
  const b = bootstrapAucCi(c.labels, c.scores, { seed: 7 });
  assert.deepEqual(a, b);
  assert.equal(a.resamples, 2000);
  assert.equal(a.level, 0.95);
  assert.ok(a.low < a.auc && a.auc < a.high, `${a.low} < ${a.auc} < ${a.high}`);
  assert.ok(a.high - a.low > 0.05 && a.high - a.low < 0.4, `width ${a.high - a.low}`);
  assertClose(a.auc, c.auc, 'point AUC');
  const other = bootstrapAucCi(c.labels, c.scores, { seed: 8 });
  assert.notEqual(other.low, a.low);

  // With one positive among three images, about (2/3)^3 of resamples miss it entirely.
  const tiny = bootstrapAucCi([1, 0, 0], [0.9, 0.2, 0.1], { resamples: 500, seed: 1 });
  assert.ok(tiny.skipped > 100 && tiny.skipped < 400, `skipped ${tiny.skipped}`);
  assert.equal(tiny.low, 1);
  assert.equal(tiny.high, 1);
});

test('percentile interpolates like numpy', () => {
  assert.equal(percentile([1, 2, 3, 4], 50), 2.5);
  assert.equal(percentile([1, 2, 3, 4], 0), 1);
  assert.equal(percentile([1, 2, 3, 4], 100), 4);
  assertClose(percentile([0, 10], 2.5), 0.25, 'p2.5');
});

test('formatFixed rounds exact halves to even like Python', () => {
  assert.equal(formatFixed(0.125, 2), '0.12');
  assert.equal(formatFixed(0.375, 2), '0.38');
  assert.equal(formatFixed(0.625, 2), '0.62');
  assert.equal(formatFixed(0.0625, 3), '0.062');
  assert.equal(formatFixed(2.5, 0), '2');
  assert.equal(formatFixed(3.5, 0), '4');
  assert.equal(formatFixed(0.615, 2), '0.61'); // 0.615 is stored just below the half
  assert.equal(formatFixed(2 / 3, 2), '0.67');
  assert.equal(formatFixed(1, 2), '1.00');
  assert.equal(formatFixed(0, 4), '0.0000');
});

for (const c of fixtures.cases) {
  test(`matches scikit-learn ${fixtures.sklearn_version}: ${c.name}`, () => {
    const m = metricsAtThreshold(c.labels, c.scores, c.threshold);
    assert.deepEqual({ tp: m.tp, fp: m.fp, tn: m.tn, fn: m.fn }, c.confusion);

    const report = classificationReport(c.labels, predict(c.scores, c.threshold), c.target_names, c.digits);
    assert.equal(report.text, c.report_text);
    assert.equal(report.undefinedMetrics.length > 0, c.zero_division_warned);
    report.classes.forEach((row, i) => {
      const expected = c.report_dict[c.target_names[i]!]!;
      assertClose(row.precision, expected.precision, `${row.name} precision`);
      assertClose(row.recall, expected.recall, `${row.name} recall`);
      assertClose(row.f1, expected['f1-score'], `${row.name} f1`);
      assert.equal(row.support, expected.support);
    });
    assertClose(report.accuracy, c.report_dict.accuracy, 'accuracy');
    for (const [ours, key] of [
      [report.macroAvg, 'macro avg'],
      [report.weightedAvg, 'weighted avg'],
    ] as const) {
      const expected = c.report_dict[key]!;
      assertClose(ours.precision, expected.precision, `${key} precision`);
      assertClose(ours.recall, expected.recall, `${key} recall`);
      assertClose(ours.f1, expected['f1-score'], `${key} f1`);
      assert.equal(ours.support, expected.support);
    }

    const roc = rocCurve(c.labels, c.scores);
    assert.equal(roc.thresholds[0], Infinity);
    assert.deepEqual(roc.thresholds.slice(1), c.roc.thresholds_after_first);
    assert.equal(roc.fpr.length, c.roc.fpr.length);
    roc.fpr.forEach((v, i) => assertClose(v, c.roc.fpr[i]!, `fpr[${i}]`));
    roc.tpr.forEach((v, i) => assertClose(v, c.roc.tpr[i]!, `tpr[${i}]`));
    assertClose(rocAuc(c.labels, c.scores), c.auc, 'AUC');

    const youden = youdenThreshold(c.labels, c.scores);
    assert.equal(youden.threshold, c.youden.threshold);
    assertClose(youden.j, c.youden.j, 'J');
  });
}

test('classification report follows sklearn >= 1.3 (F1 from counts) and flags zero division', () => {
  // Everything called COVID: NonCOVID precision is 0/0 -> 0.0; COVID F1 = 2*3 / (2*3 + 2 + 0) = 0.75 exactly, so the
  // macro F1 is exactly 0.375, which Python prints as 0.38 (sklearn 1.2's 2PR/(P+R) gave 0.3749... and printed 0.37).
  const report = classificationReport([0, 0, 1, 1, 1], [1, 1, 1, 1, 1], ['NonCOVID', 'COVID']);
  assert.equal(report.macroAvg.f1, 0.375);
  assert.deepEqual(report.undefinedMetrics, ['precision of NonCOVID']);
  assert.equal(
    report.text,
    [
      '              precision    recall  f1-score   support',
      '',
      '    NonCOVID       0.00      0.00      0.00         2',
      '       COVID       0.60      1.00      0.75         3',
      '',
      '    accuracy                           0.60         5',
      '   macro avg       0.30      0.50      0.38         5',
      'weighted avg       0.36      0.60      0.45         5',
      '',
    ].join('\n'),
  );
});

test('each bootstrap AUC equals rocAuc on the resampled images', () => {
  const c = fixtures.cases.find((x) => x.name === 'ties')!;
  let checked = 0;
  for (let seed = 0; seed < 10; seed++) {
    // Draw the same indices the bootstrap draws for its first resample.
    const rng = new Rng(seed);
    const indices = c.labels.map(() => rng.int(c.labels.length));
    const labels = indices.map((i) => c.labels[i]!);
    const scores = indices.map((i) => c.scores[i]!);
    const single = bootstrapAucCi(c.labels, c.scores, { resamples: 1, seed });
    if (single.skipped === 1) continue;
    assertClose(single.low, rocAuc(labels, scores), `seed ${seed}`);
    assert.equal(single.low, single.high);
    checked++;
  }
  assert.ok(checked >= 8);
});

test('paired AUC difference: zero for the same scores, the right sign, narrower than unpaired intervals combined', () => {
  const rng = new Rng(3);
  const labels = Array.from({ length: 200 }, (_, i) => (i % 2) as 0 | 1);
  // B is A plus noise: a weaker ranking of the same images.
  const a = labels.map((y) => y + rng.next() * 1.5);
  const b = a.map((x) => x + rng.next() * 1.5);
  const same = bootstrapAucDifference(labels, a, a, { seed: 1, resamples: 300 });
  assert.deepEqual([same.difference, same.low, same.high, same.atOrBelowZero], [0, 0, 0, 1]);
  const d = bootstrapAucDifference(labels, a, b, { seed: 1, resamples: 500 });
  assertClose(d.difference, rocAuc(labels, a) - rocAuc(labels, b), 'point difference');
  assert.ok(d.difference > 0 && d.low < d.difference && d.difference < d.high, `${d.low} < ${d.difference} < ${d.high}`);
  // Unpaired, the two intervals would combine to about sqrt(wA^2 + wB^2); pairing cancels what the images share.
  const width = (ci: { low: number; high: number }) => ci.high - ci.low;
  const unpaired = Math.hypot(width(bootstrapAucCi(labels, a, { seed: 1, resamples: 500 })), width(bootstrapAucCi(labels, b, { seed: 2, resamples: 500 })));
  assert.ok(width(d) < 0.9 * unpaired, `paired width ${width(d)} against unpaired ${unpaired}`);
  assert.deepEqual(bootstrapAucDifference(labels, b, a, { seed: 1, resamples: 500 }).difference, -d.difference);
  assert.throws(() => bootstrapAucDifference([0, 1], [0.1, 0.2], [0.3]), /same length, got 2, 2 and 1/);
});
