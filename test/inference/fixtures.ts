/** A tiny trained covid-ct model (a few seconds: 10 + 10 linked COVID-CT images, one epoch per phase), in a temp dir. */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { SHARED_ROOT } from '../../src/config/index.ts';
import { tempDir } from '../data/fixtures.ts';
import { COVID_CT, linkedDataset, trainLinked } from '../fixtures/covid-ct.ts';

export const SAMPLES = join(SHARED_ROOT, 'data', 'dicom-samples');
export { COVID_CT };

/** The first `n` test images of a class (real CT slices, never copied). */
export function testImages(cls: 'CT_COVID' | 'CT_NonCOVID', n: number): string[] {
  const dir = join(COVID_CT, 'testing-images', cls);
  return readdirSync(dir).sort().slice(0, n).map((name) => join(dir, name));
}

export async function trainTinyModel(): Promise<string> {
  const root = linkedDataset(10, 0, tempDir('covid-ct-model-'));
  const out = join(root, 'model');
  await trainLinked(root, out);
  return out;
}
