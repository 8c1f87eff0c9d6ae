/** A tiny trained covid-ct model (a few seconds: 10 + 10 linked COVID-CT images, one epoch per phase), in a temp dir. */
import { mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { resolveConfig, SHARED_ROOT } from '../../src/config/index.ts';
import { ImageCache, listSplit, makeSplit } from '../../src/data/index.ts';
import { train } from '../../src/training/train.ts';
import { tempDir } from '../data/fixtures.ts';

export const SAMPLES = join(SHARED_ROOT, 'data', 'dicom-samples');
export const COVID_CT = join(SHARED_ROOT, 'data', 'covid-ct');

/** The first `n` test images of a class (real CT slices, never copied). */
export function testImages(cls: 'CT_COVID' | 'CT_NonCOVID', n: number): string[] {
  const dir = join(COVID_CT, 'testing-images', cls);
  return readdirSync(dir).sort().slice(0, n).map((name) => join(dir, name));
}

export async function trainTinyModel(): Promise<string> {
  const root = tempDir('covid-ct-model-');
  for (const cls of ['CT_COVID', 'CT_NonCOVID']) {
    const dir = join(root, 'covid-ct', 'training-images', cls);
    mkdirSync(dir, { recursive: true });
    const source = join(COVID_CT, 'training-images', cls);
    for (const name of readdirSync(source).sort().slice(0, 10)) symlinkSync(join(source, name), join(dir, name));
  }
  const config = resolveConfig({ train: { phase1: { epochs: 1 }, phase2: { epochs: 1 }, rounds: 1, views: 1 }, data: { cacheDir: join(root, 'cache') } });
  const cache = new ImageCache(config.data.cacheDir, config.data);
  const records = listSplit(join(root, 'covid-ct'), 'train', config);
  const hashes = new Map<string, string>();
  for (const r of records) hashes.set(r.path, await cache.sha256(r.path));
  const manifest = makeSplit(records, { method: 'ordered', seed: 1, valFraction: 0.2, metadata: null, patientRegex: config.data.patientRegex, dataset: 'covid-ct', hashes });
  const val = new Set(manifest.entries.filter((e) => e.split === 'val').map((e) => e.path));
  const out = join(root, 'model');
  await train(config, cache, { out, manifest, stages: [{ name: 'covid-ct', train: records.filter((r) => !val.has(r.relPath)), val: records.filter((r) => val.has(r.relPath)) }] });
  return out;
}
