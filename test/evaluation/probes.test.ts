import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ProbeFacts, ProbeRecord } from '../../src/evaluation/probes.ts';
import { formatSwapProbe, groupAuc, shortcutProbes } from '../../src/evaluation/probes.ts';

function build(rows: Array<[string, 0 | 1, number, 'png' | 'jpeg' | 'bmp', boolean]>): { records: ProbeRecord[]; facts: Map<string, ProbeFacts> } {
  return {
    records: rows.map(([path, label, probability]) => ({ path, label, probability })),
    facts: new Map(rows.map(([path, , , format, colourMarked]) => [path, { format, colourMarked }])),
  };
}

test('formatAuc: PNG vs JPEG inside non-COVID, worked by hand', () => {
  // Non-COVID PNG scores 0.9, 0.4; JPEG 0.2, 0.5. Pairs (png > jpeg): 0.9>0.2, 0.9>0.5, 0.4>0.2, 0.4<0.5 -> 3/4.
  // COVID rows (any format) and the BMP row must not count.
  const { records, facts } = build([
    ['n1', 0, 0.9, 'png', false],
    ['n2', 0, 0.4, 'png', false],
    ['n3', 0, 0.2, 'jpeg', false],
    ['n4', 0, 0.5, 'jpeg', false],
    ['n5', 0, 0.99, 'bmp', false],
    ['c1', 1, 0.0, 'jpeg', false],
    ['c2', 1, 1.0, 'png', false],
  ]);
  const probes = shortcutProbes(records, facts);
  assert.equal(probes.formatAuc, 0.75);
  assert.deepEqual(probes.details.format, { auc: 0.75, strength: 0.75, positives: 2, negatives: 2 });
  // No colour-marked image anywhere: both colour probes are null.
  assert.deepEqual(probes.colourAuc, { covid: null, nonCovid: null });
});

test('colourAuc per class, ties count one half; strength folds the direction', () => {
  // COVID: marked 0.8, 0.6; clean 0.6, 0.3, 0.9. Pairs: 0.8 vs (0.6, 0.3, 0.9) = 1 + 1 + 0; 0.6 vs (0.6, 0.3, 0.9) = 0.5 + 1 + 0 -> 3.5/6.
  // Non-COVID: marked 0.1; clean 0.2, 0.3 -> 0/2 = 0, strength 1. All non-COVID are PNG: formatAuc null.
  const { records, facts } = build([
    ['c1', 1, 0.8, 'png', true],
    ['c2', 1, 0.6, 'png', true],
    ['c3', 1, 0.6, 'png', false],
    ['c4', 1, 0.3, 'jpeg', false],
    ['c5', 1, 0.9, 'png', false],
    ['n1', 0, 0.1, 'png', true],
    ['n2', 0, 0.2, 'png', false],
    ['n3', 0, 0.3, 'png', false],
  ]);
  const probes = shortcutProbes(records, facts);
  assert.ok(Math.abs(probes.colourAuc.covid! - 3.5 / 6) < 1e-12);
  assert.equal(probes.colourAuc.nonCovid, 0);
  assert.equal(probes.details.colourNonCovid.strength, 1);
  assert.equal(probes.formatAuc, null);
  assert.deepEqual(probes.details.format, { auc: null, strength: null, positives: 3, negatives: 0 });
});

test('probes: a score that ignores the shortcut gives 0.5; missing facts are an error', () => {
  assert.equal(groupAuc([0.5, 0.5], [0.5]).auc, 0.5);
  assert.equal(groupAuc([], [0.5]).auc, null);
  assert.throws(() => shortcutProbes([{ path: 'x', label: 0, probability: 0.3 }], new Map()), /no image facts for x/);
});

test('container swap probe: AUC of originals over their JPEG copies and the mean paired change', () => {
  // Every copy scores higher than every original: the model reads JPEG as COVID-like, AUC 0.
  const shifted = formatSwapProbe([0.1, 0.2, 0.3], [0.4, 0.5, 0.6], 75);
  assert.equal(shifted.auc, 0);
  assert.equal(shifted.strength, 1);
  assert.ok(Math.abs(shifted.meanShift! - 0.3) < 1e-12);
  assert.equal(shifted.quality, 75);
  // Copies that score as their originals do: AUC 0.5, no shift.
  const same = formatSwapProbe([0.1, 0.7], [0.1, 0.7], 75);
  assert.equal(same.auc, 0.5);
  assert.equal(same.meanShift, 0);
  assert.equal(formatSwapProbe([], [], 75).auc, null);
  assert.throws(() => formatSwapProbe([0.1], [], 75), /1 originals but 0 copies/);
});
