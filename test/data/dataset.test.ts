import assert from 'node:assert/strict';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEFAULTS, resolveConfig } from '../../src/config/index.ts';
import { batches, DatasetError, ImageCache, listImages, listSplit, loadImages } from '../../src/data/index.ts';
import { makeDataset, tempDir } from './fixtures.ts';

const config = resolveConfig();

test('listing: natural order per class, labels from the config; missing and empty classes are errors', async () => {
  const dataset = await makeDataset(tempDir(), 3);
  const records = listSplit(dataset, 'train', config);
  assert.equal(records.length, 6);
  assert.deepEqual(records.map((r) => r.label), [1, 1, 1, 0, 0, 0]);
  assert.throws(() => listImages(dataset, 'training-images', [...config.data.classes, { name: 'CT_Other', label: 0 }]), /class folder missing: .*CT_Other \(folders present: CT_COVID, CT_NonCOVID\)/);
  const empty = join(dataset, 'training-images', 'CT_NonCOVID');
  for (const f of readdirSync(empty)) rmSync(join(empty, f));
  assert.throws(() => listSplit(dataset, 'train', config), (e: unknown) => e instanceof DatasetError && /class folder is empty/.test(e.message));
});

test('cache: the second load reads the cache entry, not the decoder; bad files are listed and the rest loaded', async () => {
  const dataset = await makeDataset(tempDir(), 3);
  const cacheDir = tempDir();
  const cache = new ImageCache(cacheDir, DEFAULTS.data);
  const records = listSplit(dataset, 'train', config);
  writeFileSync(records[1]!.path, Buffer.from('broken'));
  const first = await loadImages(records, cache, { size: 32 });
  assert.equal(first.images.length, 5);
  assert.equal(first.failures.length, 1);
  assert.equal(first.failures[0]!.file, records[1]!.path);
  assert.match(first.failures[0]!.reason, /not a supported image/);
  await assert.rejects(loadImages(records, cache, { size: 32, strict: true }), /not a supported image/);

  const entries = readdirSync(cacheDir, { recursive: true }).filter((f) => String(f).endsWith('.rgb'));
  assert.equal(entries.length, 5);
  // Overwrite one cache entry: a fresh cache object (a second run) must return the cached bytes.
  const entry = join(cacheDir, String(entries[0]));
  writeFileSync(entry, Buffer.alloc(32 * 32 * 3, 123));
  const second = await loadImages(records, new ImageCache(cacheDir, DEFAULTS.data), { size: 32 });
  assert.ok(second.images.some((image) => image.data.every((v) => v === 123)));
  assert.ok(existsSync(entry));
});

test('batches: seeded shuffle per epoch, bounded size, labels aligned', async () => {
  const dataset = await makeDataset(tempDir(), 5);
  const cache = new ImageCache(tempDir(), DEFAULTS.data);
  const records = listSplit(dataset, 'train', config);
  const collect = async (seed: number, epoch: number) => {
    const out = [];
    for await (const batch of batches(records, cache, { batchSize: 4, size: 8, seed, epoch })) {
      assert.ok(batch.labels.length <= 4);
      assert.equal(batch.images.length, batch.labels.length * 8 * 8 * 3);
      batch.records.forEach((r, i) => assert.equal(batch.labels[i], r.label));
      out.push(...batch.records.map((r) => r.relPath));
    }
    return out;
  };
  const a = await collect(1, 0);
  assert.equal(a.length, 10);
  assert.deepEqual(await collect(1, 0), a);
  assert.notDeepEqual(await collect(1, 1), a);
  assert.deepEqual([...a].sort(), records.map((r) => r.relPath).sort());
});
