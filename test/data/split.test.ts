import assert from 'node:assert/strict';
import { test } from 'node:test';
import { orderBy } from 'natural-orderby';
import type { ImageRecord, MetadataRow } from '../../src/data/index.ts';
import { makeSplit } from '../../src/data/index.ts';

function records(cls: string, label: 0 | 1, names: string[]): ImageRecord[] {
  return names.map((name) => ({ path: `/d/train/${cls}/${name}`, relPath: `train/${cls}/${name}`, className: cls, label }));
}
const hashesOf = (rs: ImageRecord[]) => new Map(rs.map((r) => [r.path, `sha-${r.relPath}`]));
const base = { seed: 7, valFraction: 0.2, metadata: null, patientRegex: '^(p\\d+)-', dataset: 'toy' };

test('ordered: per class, natural sort, the last 20 % (floor) held out', () => {
  // Names chosen so that natural and plain string order differ (img-10 after img-9).
  const covid = records('CT_COVID', 1, Array.from({ length: 11 }, (_, i) => `img-${i + 1}.png`).reverse());
  const other = records('CT_NonCOVID', 0, Array.from({ length: 10 }, (_, i) => `n${i}.jpg`));
  const all = [...covid, ...other];
  const manifest = makeSplit(all, { ...base, method: 'ordered', hashes: hashesOf(all) });
  const val = manifest.entries.filter((e) => e.split === 'val').map((e) => e.path);
  // floor(0.2 * 11) = 2, floor(0.2 * 10) = 2
  assert.deepEqual(val.sort(), ['train/CT_COVID/img-10.png', 'train/CT_COVID/img-11.png', 'train/CT_NonCOVID/n8.jpg', 'train/CT_NonCOVID/n9.jpg']);
  assert.deepEqual(manifest.counts, { CT_COVID: { train: 9, val: 2 }, CT_NonCOVID: { train: 8, val: 2 } });
  assert.equal(manifest.entries[0]!.sha256, `sha-${manifest.entries[0]!.path}`);
});

test('patient: no patient on both sides, about 20 % per class, same seed same split', () => {
  const names = Array.from({ length: 60 }, (_, i) => `p${i % 17}-${i}.png`);
  const all = [...records('CT_COVID', 1, names), ...records('CT_NonCOVID', 0, orderBy(names, [(n: string) => n]).slice(0, 40))];
  const a = makeSplit(all, { ...base, method: 'patient', hashes: hashesOf(all) });
  const b = makeSplit(all, { ...base, method: 'patient', hashes: hashesOf(all) });
  assert.deepEqual(a, b);
  assert.equal(a.leakage.groupsOnBothSides, 0);
  const sides = new Map<string, Set<string>>();
  for (const e of a.entries) sides.set(e.group, (sides.get(e.group) ?? new Set()).add(e.split));
  assert.ok([...sides.values()].every((s) => s.size === 1));
  const covidVal = a.counts.CT_COVID!.val;
  assert.ok(covidVal >= 8 && covidVal <= 16, `COVID val ${covidVal} near 12`);
  const other = makeSplit(all, { ...base, seed: 8, method: 'patient', hashes: hashesOf(all) });
  assert.notDeepEqual(other.entries.map((e) => e.split), a.entries.map((e) => e.split));
});

test('official: follows metadata ucsd_split and counts leakage', () => {
  const all = records('CT_COVID', 1, ['a.png', 'b.png', 'c.png']);
  const metadata = new Map<string, MetadataRow>([
    ['train/CT_COVID/a.png', { className: 'CT_COVID', ucsdSplit: 'train', patientId: 'P1' }],
    ['train/CT_COVID/b.png', { className: 'CT_COVID', ucsdSplit: 'val', patientId: 'P1' }],
    ['train/CT_COVID/c.png', { className: 'CT_COVID', ucsdSplit: 'val', patientId: 'P2' }],
  ]);
  const manifest = makeSplit(all, { ...base, metadata, method: 'official', hashes: hashesOf(all) });
  assert.deepEqual(manifest.entries.map((e) => e.split), ['train', 'val', 'val']);
  assert.deepEqual(manifest.leakage, { groupsOnBothSides: 1, groups: ['CT_COVID:P1'] });
  assert.throws(() => makeSplit(all, { ...base, method: 'official', hashes: hashesOf(all) }), /needs the dataset's metadata.csv/);
});
