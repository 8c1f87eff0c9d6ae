import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MedicalImageError, readDicomHeader, readDicomSlice } from '../../src/data/medical/index.ts';
import type { DicomSlice } from '../../src/data/medical/index.ts';
import { copyBytes, indexOfBytes, rawExplicitString, rawPixelDataOffset, readBytes, sample } from './samples.ts';

const at = (slice: DicomSlice, row: number, col: number): number => slice.hu[row * slice.width + col] as number;
const storedSum = (slice: DicomSlice): number =>
  slice.hu.reduce((sum, hu) => sum + (hu - slice.meta.rescaleIntercept) / slice.meta.rescaleSlope, 0);

async function rejects(promise: Promise<unknown>, code: string, file: string, pattern: RegExp): Promise<MedicalImageError> {
  let caught: unknown;
  await promise.catch((error: unknown) => (caught = error));
  assert.ok(caught instanceof MedicalImageError, `expected MedicalImageError, got ${String(caught)}`);
  assert.equal(caught.code, code);
  assert.equal(caught.file, file);
  assert.match(caught.reason, pattern);
  assert.ok(caught.message.startsWith(file));
  return caught;
}

test('explicit VR LE chest CT: HU of known pixels equals raw bytes x rescale tags', async () => {
  const path = sample('ct-chest-explicit-le.dcm');
  const bytes = readBytes(path);
  const { offset } = rawPixelDataOffset(bytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const slope = Number(rawExplicitString(bytes, 0x0028, 0x1053));
  const intercept = Number(rawExplicitString(bytes, 0x0028, 0x1052));
  const expected = (row: number, col: number) => view.getInt16(offset + 2 * (row * 512 + col), true) * slope + intercept;

  const slice = await readDicomSlice(path);
  assert.equal(slice.width, 512);
  assert.equal(slice.height, 512);
  assert.ok(slice.hu instanceof Float32Array);
  for (const [row, col] of [[10, 10], [256, 256], [100, 300], [511, 511]] as const) {
    assert.equal(at(slice, row, col), expected(row, col), `pixel ${row},${col}`);
  }
  // Values documented in SOURCE.md.
  assert.equal(at(slice, 10, 10), -3024);
  assert.equal(at(slice, 256, 256), 67);
  assert.equal(storedSum(slice), 19_640_763);
  assert.deepEqual(slice.warnings, []);
  assert.equal(slice.meta.modality, 'CT');
  assert.equal(slice.meta.transferSyntax.uid, '1.2.840.10008.1.2.1');
  assert.equal(slice.meta.pixelRepresentation, 1);
  assert.deepEqual(slice.meta.window, { level: 40, width: 400 });
  assert.deepEqual(slice.meta.orientation, [1, 0, 0, 0, 1, 0]);
  assert.ok(Math.abs((slice.meta.pixelSpacing?.[0] ?? 0) - 0.675781) < 1e-6);
  assert.ok(Math.abs((slice.meta.imagePosition?.[2] ?? 0) - 4.7) < 1e-6);
});

test('implicit LE, JPEG Lossless SV1 and P14, and RLE decode to the same HU as explicit LE', async () => {
  const reference = await readDicomSlice(sample('ct-chest-explicit-le.dcm'));
  const files: [string, string][] = [
    ['ct-chest-implicit-le.dcm', '1.2.840.10008.1.2'],
    ['ct-chest-jpeg-lossless-sv1.dcm', '1.2.840.10008.1.2.4.70'],
    ['ct-chest-jpeg-lossless-p14.dcm', '1.2.840.10008.1.2.4.57'],
    ['other-syntaxes/ct-chest-rle-lossless.dcm', '1.2.840.10008.1.2.5'],
  ];
  for (const [file, uid] of files) {
    const slice = await readDicomSlice(sample(...file.split('/')));
    assert.equal(slice.meta.transferSyntax.uid, uid);
    assert.equal(at(slice, 10, 10), -3024, file);
    assert.equal(at(slice, 256, 256), 67, file);
    // Whole-frame equality also catches the decoder's last-pixel bug worked around in codecs.ts.
    assert.deepEqual(slice.hu, reference.hu, file);
    assert.deepEqual(slice.warnings, [], file);
  }
});

test('JPEG 2000 decodes like the others, or is refused naming the file and the transfer syntax', async () => {
  const path = sample('other-syntaxes', 'ct-chest-jpeg2000-lossless.dcm');
  const result = await readDicomSlice(path).catch((error: unknown) => error);
  if (result instanceof MedicalImageError) {
    assert.equal(result.code, 'unsupported-syntax');
    assert.equal(result.file, path);
    assert.match(result.message, /1\.2\.840\.10008\.1\.2\.4\.90 \(JPEG 2000 Image Compression \(Lossless Only\)\)/);
  } else {
    const reference = await readDicomSlice(sample('ct-chest-explicit-le.dcm'));
    assert.deepEqual((result as DicomSlice).hu, reference.hu);
  }
});

test('unsigned 12-bit JPEG Lossless with a malformed sequence: known pixels and stored sum', async () => {
  const slice = await readDicomSlice(sample('other-syntaxes', 'ct-neck-jpeg-lossless-sv1-u12-badseq.dcm'));
  assert.equal(slice.meta.pixelRepresentation, 0);
  assert.equal(slice.meta.bitsStored, 12);
  assert.equal(at(slice, 10, 10), 68);
  assert.equal(at(slice, 256, 256), 202);
  assert.equal(storedSum(slice), 248_348_502);
  assert.deepEqual(slice.meta.window, { level: 40, width: 350 }, 'first of several window values');
});

test('small CT from a Buffer: HU from raw bytes, and the label names it', async () => {
  const bytes = readBytes(sample('ct-small-explicit-le.dcm'));
  const { offset } = rawPixelDataOffset(bytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const intercept = Number(rawExplicitString(bytes, 0x0028, 0x1052));
  const slice = await readDicomSlice(bytes, { file: 'upload.dcm' });
  assert.equal(slice.file, 'upload.dcm');
  assert.equal(at(slice, 10, 10), view.getInt16(offset + 2 * (10 * 128 + 10), true) + intercept);
  assert.equal(at(slice, 10, 10), -800);
  assert.equal(at(slice, 64, 64), 904);
  assert.equal(slice.meta.window, undefined);
});

test('MR slice: read, with warnings for modality and missing rescale tags', async () => {
  const slice = await readDicomSlice(sample('mr-small-explicit-le.dcm'));
  assert.equal(slice.meta.modality, 'MR');
  assert.equal(slice.meta.hasRescale, false);
  assert.equal(at(slice, 10, 10), 760);
  assert.equal(at(slice, 32, 32), 182);
  assert.ok(slice.warnings.some((warning) => /modality is MR, not CT/.test(warning)), slice.warnings.join('; '));
  assert.ok(slice.warnings.some((warning) => /no Rescale Slope\/Intercept/.test(warning)), slice.warnings.join('; '));
});

test('truncated file: a MedicalImageError naming the file and the missing bytes, no partial image', async () => {
  const path = sample('corrupt-truncated.dcm');
  await rejects(readDicomSlice(path), 'truncated', path, /Pixel Data declares 524288 bytes but only 258626/);
});

test('a file that is not DICOM is refused as such', async () => {
  const path = sample('nifti', 'chest-ct-cropped.nii');
  await rejects(readDicomSlice(path), 'not-dicom', path, /not a DICOM Part 10 file/);
  await rejects(readDicomSlice(sample('no-such.dcm')), 'io', sample('no-such.dcm'), /cannot read file/);
});

test('unknown transfer syntax: refused naming the UID', async () => {
  const bytes = copyBytes(sample('ct-small-explicit-le.dcm'));
  // Same length as 1.2.840.10008.1.2.1, so the file meta group stays valid.
  const at = indexOfBytes(bytes, [...Buffer.from('1.2.840.10008.1.2.1\0')]);
  bytes.set(Buffer.from('1.2.840.10008.1.2.9\0'), at);
  await rejects(readDicomSlice(bytes, { file: 'x.dcm' }), 'unsupported-syntax', 'x.dcm', /1\.2\.840\.10008\.1\.2\.9 \(unknown/);
});

test('over-large dimensions are refused from the header, before decoding', async () => {
  const bytes = copyBytes(sample('ct-small-explicit-le.dcm'));
  // (0028,0010) Rows, US, length 2 -> 65535.
  const rows = indexOfBytes(bytes, [0x28, 0x00, 0x10, 0x00, 0x55, 0x53, 0x02, 0x00]);
  assert.ok(rows > 0);
  bytes.set([0xff, 0xff], rows + 8);
  await rejects(readDicomSlice(bytes, { file: 'big.dcm' }), 'too-large', 'big.dcm', /65535 pixels exceeds the limit/);
  await rejects(
    readDicomHeader(sample('ct-chest-explicit-le.dcm'), { limits: { maxRows: 256 } }),
    'too-large',
    sample('ct-chest-explicit-le.dcm'),
    /exceeds the limit/,
  );
});

test('a non-axial orientation gives a warning', async () => {
  const bytes = copyBytes(sample('ct-small-explicit-le.dcm'));
  const header = await readDicomHeader(bytes);
  assert.deepEqual(header.warnings, []);
  // Rewrite Image Orientation (Patient) 1\0\0\0\1\0 as coronal 1\0\0\0\0\-1 (same length when padded).
  const iop = indexOfBytes(bytes, [0x20, 0x00, 0x37, 0x00, 0x44, 0x53]);
  const length = (bytes[iop + 6] as number) | ((bytes[iop + 7] as number) << 8);
  const coronal = '1\\0\\0\\0\\0\\-1'.padEnd(length, ' ');
  bytes.set(Buffer.from(coronal, 'latin1'), iop + 8);
  const patched = await readDicomHeader(bytes, { file: 'coronal.dcm' });
  assert.ok(patched.warnings.some((warning) => /not axial/.test(warning)), patched.warnings.join('; '));
});
