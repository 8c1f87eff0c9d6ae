import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { resolveConfig } from '../../src/config/index.ts';
import { ImageCache, imageFacts, inspectDataset, quartiles } from '../../src/data/index.ts';
import { makeDataset, tempDir } from './fixtures.ts';

test('quartiles: linear interpolation as numpy', () => {
  assert.deepEqual(quartiles([40, 41, 42, 43, 44]), { q1: 41, median: 42, q3: 43 });
  assert.deepEqual(quartiles([1, 2, 3, 4]), { q1: 1.75, median: 2.5, q3: 3.25 });
  assert.deepEqual(quartiles([7]), { q1: 7, median: 7, q3: 7 });
});

test('inspect: shares of formats, not-grey and colour-marked images, size quartiles; imageFacts agrees', async () => {
  const root = tempDir();
  const dataset = await makeDataset(root, 4);
  const covidDir = join(dataset, 'training-images', 'CT_COVID');
  // A grey JPEG named .png, and a grey PNG with a red mark.
  const grey = await sharp({ create: { width: 50, height: 30, channels: 3, background: { r: 90, g: 90, b: 90 } } }).jpeg().toBuffer();
  writeFileSync(join(covidDir, '2020.01.00.10000-p1-1.png'), grey);
  const marked = Buffer.alloc(40 * 30 * 3, 120);
  for (let y = 2; y < 10; y++) for (let x = 2; x < 10; x++) marked.set([255, 0, 0], (y * 40 + x) * 3);
  writeFileSync(join(covidDir, '2020.01.01.10001-p1-2.png'), await sharp(marked, { raw: { width: 40, height: 30, channels: 3 } }).png().toBuffer());

  const config = resolveConfig({ data: { imageSize: 32, cacheDir: join(root, 'cache') } });
  const cache = new ImageCache(config.data.cacheDir, config.data);
  const report = await inspectDataset(dataset, config, cache);
  const covid = report.classes.find((c) => c.split === 'train' && c.className === 'CT_COVID')!;
  assert.deepEqual(covid.shares.formats, { jpeg: 0.25, png: 0.75 });
  // The fixture's coloured backgrounds (g = shade - 5i) are not grey except i = 0; the JPEG replaced i = 0.
  assert.equal(covid.shares.colourMarked, 0.25);
  assert.equal(covid.shares.notGrey, covid.notGrey / 4);
  assert.deepEqual(covid.sizeQuartiles.width, quartiles([50, 40, 42, 43]));
  assert.deepEqual(covid.sizeQuartiles.height, { q1: 30, median: 30, q3: 30 });
  const other = report.classes.find((c) => c.split === 'test' && c.className === 'CT_NonCOVID')!;
  assert.deepEqual(other.shares.formats, { png: 1 });

  const paths = ['2020.01.00.10000-p1-1.png', '2020.01.01.10001-p1-2.png', '2020.01.02.10002-p1-3.png'].map((n) => join(covidDir, n));
  const facts = await imageFacts(paths, cache, 32);
  assert.deepEqual([...facts.values()].map((f) => [f.format, f.colourMarked, f.width]), [['jpeg', false, 50], ['png', true, 40], ['png', false, 42]]);
  assert.equal(facts.get(paths[0]!)!.mode, 'RGB');
});
