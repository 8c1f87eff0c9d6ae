import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { sniffMedical } from '../../src/data/medical/index.ts';
import { readBytes, sample } from './samples.ts';

test('sniffMedical recognises DICOM, NIfTI and gzipped NIfTI by content', () => {
  assert.equal(sniffMedical(readBytes(sample('ct-small-explicit-le.dcm'))), 'dicom');
  assert.equal(sniffMedical(readBytes(sample('other-syntaxes', 'ct-chest-rle-lossless.dcm'))), 'dicom');
  assert.equal(sniffMedical(readBytes(sample('nifti', 'chest-ct-cropped.nii'))), 'nifti');
  assert.equal(sniffMedical(readBytes(sample('nifti', 'chest-ct-cropped.nii.gz'))), 'nifti');
});

test('sniffMedical returns null for anything else', () => {
  assert.equal(sniffMedical(readBytes(sample('SOURCE.md'))), null);
  assert.equal(sniffMedical(new Uint8Array(0)), null);
  assert.equal(sniffMedical(gzipSync(Buffer.from('not an image'))), null);
  assert.equal(sniffMedical(Uint8Array.from([0x1f, 0x8b, 1, 2, 3])), null, 'broken gzip');
  assert.equal(sniffMedical(readBytes(sample('corrupt-truncated.dcm'))), 'dicom', 'sniffing reads only the magic');
});
