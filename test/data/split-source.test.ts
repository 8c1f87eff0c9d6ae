import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEFAULTS, resolveConfig, SHARED_ROOT } from '../../src/config/index.ts';
import type { ImageRecord, SplitManifest } from '../../src/data/index.ts';
import { listSplit, makeSplit, readGroupColumn } from '../../src/data/index.ts';

function records(cls: string, label: 0 | 1, names: string[]): ImageRecord[] {
  return names.map((name) => ({ path: `/d/train/${cls}/${name}`, relPath: `train/${cls}/${name}`, className: cls, label }));
}
const hashesOf = (rs: readonly ImageRecord[]) => new Map(rs.map((r) => [r.path, `sha-${r.relPath}`]));
const base = { valFraction: 0.2, metadata: null, patientRegex: '^(p\\d+)-', dataset: 'toy' };

function groupsOnBothSides(manifest: SplitManifest): string[] {
  const sides = new Map<string, Set<string>>();
  for (const e of manifest.entries) sides.set(e.group, (sides.get(e.group) ?? new Set()).add(e.split));
  return [...sides].filter(([, s]) => s.size > 1).map(([g]) => g);
}

/** 50 COVID and 40 non-COVID images in groups of uneven sizes; 'shared' holds images of both classes. */
function toyGroups(): { all: ImageRecord[]; groups: Map<string, string> } {
  const covid = records('CT_COVID', 1, Array.from({ length: 50 }, (_, i) => `c${i}.png`));
  const other = records('CT_NonCOVID', 0, Array.from({ length: 40 }, (_, i) => `n${i}.png`));
  const groups = new Map<string, string>();
  covid.forEach((r, i) => groups.set(r.relPath, i < 3 ? 'shared' : `paper:${i % 13}`));
  other.forEach((r, i) => groups.set(r.relPath, i < 2 ? 'shared' : `patient:${i % 11}`));
  return { all: [...covid, ...other], groups };
}

test('source: whole groups to one side (also a group spanning both classes), about 20 % per class, seeded', () => {
  const { all, groups } = toyGroups();
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    const manifest = makeSplit(all, { ...base, seed, method: 'source', hashes: hashesOf(all), sourceGroups: groups });
    assert.equal(manifest.method, 'source');
    assert.deepEqual(manifest.leakage, { groupsOnBothSides: 0, groups: [] });
    assert.deepEqual(groupsOnBothSides(manifest), []);
    assert.ok(Math.abs(manifest.counts.CT_COVID!.val - 10) <= 4, `seed ${seed}: COVID val ${manifest.counts.CT_COVID!.val}`);
    assert.ok(Math.abs(manifest.counts.CT_NonCOVID!.val - 8) <= 4, `seed ${seed}: non-COVID val ${manifest.counts.CT_NonCOVID!.val}`);
    assert.equal(manifest.entries.find((e) => e.path === 'train/CT_COVID/c0.png')!.group, 'shared');
  }
  const again = (seed: number) => makeSplit(all, { ...base, seed, method: 'source', hashes: hashesOf(all), sourceGroups: groups });
  assert.deepEqual(again(3), again(3));
  assert.notDeepEqual(again(3).entries.map((e) => e.split), again(4).entries.map((e) => e.split));
});

test('source: missing groups are errors naming the file or the remedy', () => {
  const all = records('CT_COVID', 1, ['a.png', 'b.png']);
  assert.throws(() => makeSplit(all, { ...base, seed: 1, method: 'source', hashes: hashesOf(all) }), /needs source groups/);
  const partial = new Map([['train/CT_COVID/a.png', 'g1']]);
  assert.throws(() => makeSplit(all, { ...base, seed: 1, method: 'source', hashes: hashesOf(all), sourceGroups: partial }), /train\/CT_COVID\/b\.png has no group/);
  assert.throws(() => readGroupColumn('/nonexistent-dataset'), /no column 'source_group' in provenance\.csv or metadata\.csv/);
});

const dataset = join(SHARED_ROOT, 'data', 'covid-ct');
test('source on the real provenance.csv: no source_group on both sides, for several seeds', { skip: !existsSync(join(dataset, 'provenance.csv')) }, () => {
  const all = listSplit(dataset, 'train', DEFAULTS);
  const { groups, file } = readGroupColumn(dataset);
  assert.match(file, /provenance\.csv$/);
  const hashes = hashesOf(all);
  for (const seed of [42, 1, 2]) {
    const manifest = makeSplit(all, { ...base, dataset: 'covid-ct', seed, method: 'source', hashes, sourceGroups: groups });
    assert.equal(manifest.leakage.groupsOnBothSides, 0);
    assert.deepEqual(groupsOnBothSides(manifest), []);
    // The known cross-split patient of paper 2020.03.13.20035212 (SOURCE.md) stays on one side.
    const paper = manifest.entries.filter((e) => e.group === 'paper:2020.03.13.20035212');
    assert.ok(paper.length > 0 && new Set(paper.map((e) => e.split)).size === 1);
    const { CT_COVID: covid, CT_NonCOVID: other } = manifest.counts;
    assert.ok(covid!.val >= 35 && covid!.val <= 65, `COVID val ${covid!.val}`);
    assert.ok(other!.val >= 45 && other!.val <= 72, `non-COVID val ${other!.val}`);
  }
  // The same check through patient ids of metadata.csv (--group-column patient_id).
  const byPatient = readGroupColumn(dataset, 'patient_id');
  assert.match(byPatient.file, /metadata\.csv$/);
  assert.equal(makeSplit(all, { ...base, seed: 42, method: 'source', hashes, sourceGroups: byPatient.groups }).leakage.groupsOnBothSides, 0);
});

test('folds: k runs hold out every image exactly once, whole groups, balanced per class, seeded', () => {
  const { all, groups } = toyGroups();
  const split = (method: 'source' | 'patient', seed: number, index: number) =>
    makeSplit(all, { ...base, seed, method, hashes: hashesOf(all), sourceGroups: groups, fold: { index, count: 4 } });
  for (const seed of [1, 2]) {
    const held = new Map<string, number>();
    for (let index = 1; index <= 4; index++) {
      const manifest = split('source', seed, index);
      assert.deepEqual(manifest.fold, { index, count: 4 });
      assert.equal(manifest.valFraction, 0.25);
      assert.deepEqual(groupsOnBothSides(manifest), []);
      // 50 / 4 and 40 / 4 per fold, give or take a group.
      assert.ok(Math.abs(manifest.counts.CT_COVID!.val - 12.5) <= 4, `fold ${index}: COVID val ${manifest.counts.CT_COVID!.val}`);
      assert.ok(Math.abs(manifest.counts.CT_NonCOVID!.val - 10) <= 4, `fold ${index}: non-COVID val ${manifest.counts.CT_NonCOVID!.val}`);
      for (const e of manifest.entries.filter((e) => e.split === 'val')) held.set(e.path, (held.get(e.path) ?? 0) + 1);
    }
    assert.equal(held.size, all.length);
    assert.ok([...held.values()].every((n) => n === 1));
  }
  assert.deepEqual(split('source', 3, 2), split('source', 3, 2));
  assert.notDeepEqual(split('source', 3, 2).entries.map((e) => e.split), split('source', 4, 2).entries.map((e) => e.split));
  // Patient folds group by the patient id (file-name regex here): p1-... and p1-... stay together.
  const patients = records('CT_COVID', 1, ['p1-a.png', 'p1-b.png', 'p2-a.png', 'p3-a.png']).concat(records('CT_NonCOVID', 0, ['p4-a.png', 'p5-a.png', 'p6-a.png', 'p7-a.png']));
  const byPatient = makeSplit(patients, { ...base, seed: 1, method: 'patient', hashes: hashesOf(patients), fold: { index: 1, count: 2 } });
  assert.deepEqual(groupsOnBothSides(byPatient), []);
});

test('folds: refused for ordered and official splits, and a fold without a class is an error', () => {
  const all = [...records('CT_COVID', 1, ['p1-a.png', 'p2-a.png']), ...records('CT_NonCOVID', 0, ['p3-a.png', 'p4-a.png'])];
  assert.throws(() => makeSplit(all, { ...base, seed: 1, method: 'ordered', hashes: hashesOf(all), fold: { index: 1, count: 2 } }), /split method 'ordered' has no folds/);
  assert.throws(() => makeSplit(all, { ...base, seed: 1, method: 'patient', hashes: hashesOf(all), fold: { index: 3, count: 3 } }), /fold 3 of 3 holds no CT_COVID image/);
});

test('folds in the config: off by default, patient or source only, fold within 1..k', () => {
  assert.equal(resolveConfig({}).folds, 0);
  assert.equal(resolveConfig({ split: 'source', folds: 5, fold: 5 }).fold, 5);
  assert.throws(() => resolveConfig({ split: 'ordered', folds: 5 }), /config: split must be one of patient, source with folds/);
  assert.throws(() => resolveConfig({ split: 'source', folds: 5, fold: 6 }), /config: fold must be an integer in \[1, folds = 5\], got 6/);
  assert.throws(() => resolveConfig({ split: 'source', folds: 1 }), /config: folds must be 0 \(off\) or an integer in \[2, 20\]/);
});
