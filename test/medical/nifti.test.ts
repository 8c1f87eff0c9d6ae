import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mapAxes, readNifti, MedicalImageError } from '../../src/data/medical/index.ts';
import { readBytes, sample } from './samples.ts';

const NII = sample('nifti', 'chest-ct-cropped.nii');
const NII_GZ = sample('nifti', 'chest-ct-cropped.nii.gz');

test('NIfTI chest CT: slice count, shape, spacing and orientation from the sform', async () => {
  const volume = await readNifti(NII);
  assert.equal(volume.sliceCount, 112);
  assert.equal(volume.width, 122);
  assert.equal(volume.height, 102);
  assert.deepEqual(volume.dims, [122, 102, 112]);
  assert.equal(volume.datatype, 'int16');
  assert.equal(volume.orientationSource, 'sform');
  assert.deepEqual(volume.spacing, [1.5, 1.5, 1.5]);
  // Voxel axes point Left, Posterior, Superior: already radiological display order, no flip.
  assert.deepEqual(volume.axes, {
    column: { axis: 0, flipped: false },
    row: { axis: 1, flipped: false },
    slice: { axis: 2, flipped: false },
  });
  assert.deepEqual(volume.warnings, []);
});

test('NIfTI known voxels match SOURCE.md and the raw int16 data', async () => {
  const volume = await readNifti(NII);
  const bytes = readBytes(NII);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const raw = (i: number, j: number, k: number) => view.getInt16(352 + 2 * (i + 122 * (j + 102 * k)), true);
  const voxel = (i: number, j: number, k: number) => volume.getSlice(k).hu[j * volume.width + i];
  assert.equal(voxel(0, 0, 0), -21);
  assert.equal(voxel(10, 10, 56), -340);
  assert.equal(voxel(61, 51, 56), 434);
  for (const [i, j, k] of [[0, 0, 0], [10, 10, 56], [61, 51, 56], [121, 101, 111], [5, 90, 3]] as const) {
    assert.equal(voxel(i, j, k), raw(i, j, k));
  }
  assert.ok(Math.abs(volume.getSlice(0).z - (1.5 * 0 + 576.2)) < 1e-3);
  assert.throws(() => volume.getSlice(112), RangeError);
});

test('.nii.gz gives the same slices as .nii', async () => {
  const [plain, gzipped] = await Promise.all([readNifti(NII), readNifti(NII_GZ)]);
  assert.equal(gzipped.sliceCount, plain.sliceCount);
  for (const k of [0, 56, 111]) assert.deepEqual(gzipped.getSlice(k).hu, plain.getSlice(k).hu);
});

/** A tiny NIfTI-1 file: 3 x 2 x 2 voxels, values 0..11 (i fastest), with the given datatype and sform. */
function syntheticNifti(options: { datatype: number; bytes: number; slope?: number; inter?: number; srow?: number[][] }) {
  const dims = [3, 2, 2];
  const count = 12;
  const buffer = new ArrayBuffer(352 + count * options.bytes);
  const view = new DataView(buffer);
  const bytes = new Uint8Array(buffer);
  view.setInt32(0, 348, true);
  [3, ...dims, 1, 1, 1, 1].forEach((value, i) => view.setInt16(40 + 2 * i, value, true));
  view.setInt16(70, options.datatype, true);
  view.setInt16(72, options.bytes * 8, true);
  [1, 1, 1, 1, 1, 1, 1, 1].forEach((value, i) => view.setFloat32(76 + 4 * i, value, true));
  view.setFloat32(108, 352, true);
  view.setFloat32(112, options.slope ?? 0, true);
  view.setFloat32(116, options.inter ?? 0, true);
  view.setInt16(254, options.srow ? 1 : 0, true);
  (options.srow ?? []).forEach((row, r) => row.forEach((value, c) => view.setFloat32(280 + 16 * r + 4 * c, value, true)));
  bytes.set(Buffer.from('n+1\0', 'latin1'), 344);
  for (let v = 0; v < count; v++) {
    if (options.datatype === 16) view.setFloat32(352 + 4 * v, v, true);
    else view.setUint8(352 + v, v);
  }
  return bytes;
}

test('synthetic NIfTI: scl_slope/scl_inter applied, float32 read, RAS storage flipped to display order', async () => {
  // Identity sform: i -> Right, j -> Anterior, k -> Superior. Display wants columns to the patient's left and
  // rows to posterior, so both in-plane axes are flipped; k stays (inferior first).
  const identity = [
    [1, 0, 0, 0],
    [0, 1, 0, 0],
    [0, 0, 1, 0],
  ];
  const volume = await readNifti(syntheticNifti({ datatype: 2, bytes: 1, slope: 2, inter: -10, srow: identity }));
  assert.deepEqual(volume.scaling, { slope: 2, intercept: -10 });
  assert.equal(volume.axes.column.flipped, true);
  assert.equal(volume.axes.row.flipped, true);
  // Slice 0, display (row 0, col 0) = voxel (i=2, j=1, k=0) = 5 -> 2*5-10 = 0.
  assert.deepEqual([...volume.getSlice(0).hu], [5, 4, 3, 2, 1, 0].map((v) => 2 * v - 10));
  assert.deepEqual([...volume.getSlice(1).hu], [11, 10, 9, 8, 7, 6].map((v) => 2 * v - 10));

  const floats = await readNifti(syntheticNifti({ datatype: 16, bytes: 4 }));
  assert.equal(floats.datatype, 'float32');
  assert.equal(floats.orientationSource, 'pixdim');
  assert.deepEqual(floats.scaling, { slope: 1, intercept: 0 }, 'scl_slope 0 means no scaling');
  assert.ok(floats.warnings.some((warning) => /no sform or qform/.test(warning)));
});

test('mapAxes: a volume stored coronally still gives axial slices', () => {
  // i -> Left (-x), j -> Superior (+z), k -> Posterior (-y).
  const axes = mapAxes([
    [-1, 0, 0, 0],
    [0, 0, -1, 0],
    [0, 1, 0, 0],
    [0, 0, 0, 1],
  ]);
  assert.deepEqual(axes, {
    column: { axis: 0, flipped: false },
    row: { axis: 2, flipped: false },
    slice: { axis: 1, flipped: false },
  });
});

test('NIfTI errors: not NIfTI, truncated, too many voxels', async () => {
  await assert.rejects(readNifti(sample('ct-small-explicit-le.dcm')), { name: 'MedicalImageError', code: 'not-nifti' });
  const whole = syntheticNifti({ datatype: 2, bytes: 1 });
  await assert.rejects(readNifti(whole.subarray(0, 356), { file: 'cut.nii' }), (error: unknown) => {
    assert.ok(error instanceof MedicalImageError);
    assert.equal(error.code, 'truncated');
    assert.equal(error.file, 'cut.nii');
    return true;
  });
  await assert.rejects(readNifti(NII, { maxVoxels: 1000 }), { name: 'MedicalImageError', code: 'too-large' });
});
