import { test } from 'node:test';
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { readDicomSeries } from '../../src/data/medical/index.ts';
import { rawPixelDataOffset, readBytes, sample } from './samples.ts';

test('series in scrambled file order is sorted by Image Position Patient along the slice normal', async () => {
  const result = await readDicomSeries(sample('series'));
  assert.equal(result.failures.length, 0);
  assert.equal(result.series.length, 1);
  const [series] = result.series;
  assert.ok(series);
  assert.equal(series.seriesInstanceUid, '1.3.6.1.4.1.14519.5.2.1.6279.6001.154677396354641150280013275227');
  assert.equal(series.sortedBy, 'imagePosition');
  // SOURCE.md: z ascending; neither the file names nor Slice Location / Instance Number give this order.
  assert.deepEqual(
    series.slices.map((slice) => basename(slice.file)),
    ['000064.dcm', '000159.dcm', '000183.dcm', '000219.dcm', '000117.dcm'],
  );
  assert.deepEqual(series.slices.map((slice) => slice.index), [0, 1, 2, 3, 4]);
  const z = series.slices.map((slice) => slice.z ?? NaN);
  [-531.800049, -530.800049, -529.800049, -528.800049, -527.800049].forEach((expected, i) =>
    assert.ok(Math.abs((z[i] as number) - expected) < 1e-4, `z[${i}] = ${z[i]}`),
  );
  assert.deepEqual(series.warnings, []);
});

test('series slices load lazily as HU: 12-bit unsigned, intercept -1000, values from raw bytes', async () => {
  const [series] = (await readDicomSeries(sample('series'))).series;
  assert.ok(series);
  const centres = [45, 55, 50, 41, 32];
  for (const [i, entry] of series.slices.entries()) {
    const slice = await entry.load();
    const bytes = readBytes(entry.file);
    const { offset } = rawPixelDataOffset(bytes);
    const stored = new DataView(bytes.buffer, bytes.byteOffset).getUint16(offset + 2 * (256 * 512 + 256), true) & 0x0fff;
    assert.equal(slice.hu[256 * 512 + 256], stored - 1000);
    assert.equal(slice.hu[256 * 512 + 256], centres[i]);
    assert.equal(slice.hu[10 * 512 + 10], -1000);
    assert.deepEqual(slice.meta.window, { level: -450, width: 2000 });
  }
});

test('a mixed folder: unreadable files are listed with reasons, the rest is grouped by series', async () => {
  const result = await readDicomSeries(sample());
  const failed = new Map(result.failures.map((failure) => [basename(failure.file), failure]));
  assert.equal(failed.get('SOURCE.md')?.code, 'not-dicom');
  // Six distinct series: chest (explicit/implicit/JPEG/truncated share one UID), small CT, MR ...
  assert.ok(result.series.length >= 3, `${result.series.length} series`);
  assert.ok(result.warnings.some((warning) => /series in/.test(warning)));
  const mr = result.series.find((series) => series.slices.some((slice) => basename(slice.file).startsWith('mr-')));
  assert.ok(mr?.warnings.some((warning) => /modality is MR/.test(warning)));
  // Same image at the same position in several files: the ordering problem is reported, not hidden.
  const chest = result.series.find((series) => series.slices.length >= 4);
  assert.ok(chest?.warnings.some((warning) => /does not tell all/.test(warning)), chest?.warnings.join('; '));
});

test('a folder that does not exist is a MedicalImageError', async () => {
  await assert.rejects(readDicomSeries(sample('nope')), { name: 'MedicalImageError', code: 'io' });
});
