// Decoding and resizing the 543 COVID-CT training images to 256x256, cold (empty cache) and from the cache.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig, SHARED_ROOT } from '../src/config/index.ts';
import { ImageCache, listSplit, loadImages } from '../src/data/index.ts';

const config = resolveConfig();
const records = listSplit(join(SHARED_ROOT, 'data', 'covid-ct'), 'train', config);
const cacheDir = mkdtempSync(join(tmpdir(), 'covid-ct-bench-'));
const size = config.data.imageSize;

async function timed(cache: ImageCache): Promise<number> {
  const start = performance.now();
  const { images, failures } = await loadImages(records, cache, { size, strict: true });
  if (images.length !== records.length || failures.length) throw new Error('bench data: not every image loaded');
  return (performance.now() - start) / 1000;
}

try {
  const coldS = await timed(new ImageCache(cacheDir, config.data));
  // A new cache object: nothing remembered in memory, as in a second run.
  const cachedS = await timed(new ImageCache(cacheDir, config.data));
  console.log(`${records.length} images to ${size}x${size}: cold ${coldS.toFixed(2)} s (${(records.length / coldS).toFixed(0)} images/s), cached ${cachedS.toFixed(2)} s (${(records.length / cachedS).toFixed(0)} images/s)`);
  console.log(JSON.stringify({ bench: 'data', images: records.length, size, cold_s: Number(coldS.toFixed(3)), cached_s: Number(cachedS.toFixed(3)) }));
} finally {
  rmSync(cacheDir, { recursive: true, force: true });
}
