// Integration: the real challenge data in ../shared/data/covid-ct, as SOURCE.md describes it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEFAULTS, PROJECT_ROOT, resolveConfig, SHARED_ROOT } from '../../src/config/index.ts';
import type { SplitManifest } from '../../src/data/index.ts';
import { ImageCache, inspectDataset, listSplit } from '../../src/data/index.ts';
import { tempDir } from './fixtures.ts';

const dataset = join(SHARED_ROOT, 'data', 'covid-ct');
const config = resolveConfig();

test('COVID-CT: 251/292 training and 98/105 test images per class', () => {
  const count = (split: 'train' | 'test', cls: string) => listSplit(dataset, split, config).filter((r) => r.className === cls).length;
  assert.deepEqual([count('train', 'CT_COVID'), count('train', 'CT_NonCOVID'), count('test', 'CT_COVID'), count('test', 'CT_NonCOVID')], [251, 292, 98, 105]);
});

test('COVID-CT: inspect finds the containers, modes and the two cross-label leaks SOURCE.md documents', async () => {
  const report = await inspectDataset(dataset, config, new ImageCache(DEFAULTS.data.cacheDir, DEFAULTS.data));
  const summary = (split: string, cls: string) => report.classes.find((c) => c.split === split && c.className === cls)!;
  assert.deepEqual(summary('train', 'CT_COVID').formats, { png: 219, jpeg: 32 });
  assert.deepEqual(summary('train', 'CT_COVID').modes, { 'PNG RGBA': 127, 'PNG RGB': 80, 'PNG L': 12, 'JPEG RGB': 32 });
  assert.deepEqual(summary('train', 'CT_NonCOVID').formats, { png: 143, jpeg: 149 });
  assert.deepEqual(summary('test', 'CT_COVID').modes, { 'PNG RGBA': 98 });
  assert.deepEqual(summary('test', 'CT_NonCOVID').modes, { 'PNG RGBA': 105 });
  assert.equal(summary('train', 'CT_COVID').width.min, 115);
  assert.equal(summary('train', 'CT_COVID').width.max, 1671);
  assert.equal(report.unreadable.length, 0);
  assert.equal(report.duplicates.filter((d) => d.kind === 'exact').length, 0);
  const conflicts = report.duplicates.filter((d) => d.labelConflict && d.where === 'train-test').map((d) => `${d.a} ~ ${d.b}`).sort();
  assert.deepEqual(conflicts, [
    'training-images/CT_NonCOVID/71%0.jpg ~ testing-images/CT_COVID/covid_96.png',
    'training-images/CT_NonCOVID/71%1.jpg ~ testing-images/CT_COVID/covid_97.png',
  ]);
});

function cli(...args: string[]) {
  return spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'covid-ct.js'), ...args], { encoding: 'utf8', env: { ...process.env, COVID_CT_DATA: '' } });
}

test('CLI: data split writes a reproducible manifest; official and patient splits have no patient on both sides', () => {
  const dir = tempDir();
  for (const [method, covidVal, otherVal] of [['ordered', 50, 58], ['official', 60, 58], ['patient', -1, -1]] as const) {
    const out = join(dir, `${method}.json`);
    const run = cli('data', 'split', '--method', method, '--seed', '3', '--out', out);
    assert.equal(run.status, 0, run.stderr);
    const manifest = JSON.parse(readFileSync(out, 'utf8')) as SplitManifest;
    assert.equal(manifest.entries.length, 543);
    assert.ok(manifest.entries.every((e) => /^[0-9a-f]{64}$/.test(e.sha256)));
    if (covidVal > 0) assert.deepEqual([manifest.counts.CT_COVID!.val, manifest.counts.CT_NonCOVID!.val], [covidVal, otherVal]);
    if (method !== 'ordered') assert.equal(manifest.leakage.groupsOnBothSides, 0);
  }
});

test('CLI: a missing dataset says where it looked and how to point elsewhere; usage errors exit 2', () => {
  const missing = cli('data', 'inspect', '--data', '/nowhere/at/all');
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /data folder not found: \/nowhere\/at\/all \(from --data\)\. Point covid-ct at your data with --data DIR or the COVID_CT_DATA/);
  const wrongDataset = cli('data', 'inspect', '--data', tempDir());
  assert.match(wrongDataset.stderr, /dataset 'covid-ct' not found at/);
  const usage = cli('data', 'split', '--method', 'random');
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /Allowed choices are ordered, patient, official/);
  assert.equal(cli('data', 'augment', '--help').status, 0);
});
