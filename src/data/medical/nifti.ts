/**
 * NIfTI-1/-2 volumes (.nii, .nii.gz) as a stack of axial slices in radiological display orientation.
 *
 * Orientation: NIfTI world coordinates are RAS+ (x grows towards the patient's Right, y towards Anterior,
 * z towards Superior). The voxel-to-world affine comes from the sform when sform_code > 0
 * and is at least the qform_code, else from the qform, else from pixdim alone (NIfTI "method 1"); this is what
 * nifti-reader-js computes. Each voxel axis is matched to the world axis it is most parallel to; the axis
 * along z (head-foot) is the slice axis, so slices are axial whatever the storage order.
 *
 * Display: a slice is laid out as a DICOM axial CT slice (IOP 1\0\0\0\1\0) is shown: columns run from the
 * patient's right (left of the screen) to the patient's left, rows from anterior (top) to posterior, and
 * slice 0 is the most inferior slice (as a DICOM series sorted by z). Axes are flipped to get there.
 */
import { readFile, stat } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { isCompressed, isNIFTI, readHeader, readImage } from 'nifti-reader-js';
import type { NIFTI1, NIFTI2 } from 'nifti-reader-js';
import { MEDICAL_DEFAULTS } from './defaults.ts';
import { MedicalImageError, describeThrown } from './errors.ts';

export type OrientationSource = 'sform' | 'qform' | 'pixdim';

export interface NiftiSlice {
  index: number;
  /** Scaled values (HU for a CT volume), row-major, length width * height. */
  hu: Float32Array;
  width: number;
  height: number;
  /** World z (mm, RAS+: superior positive) of the slice centre. */
  z: number;
}

export interface NiftiVolume {
  file: string;
  /** Axial slices after reorientation. */
  sliceCount: number;
  width: number;
  height: number;
  /** Millimetres between columns, rows and slices of the reoriented volume (from the affine). */
  spacing: [number, number, number];
  datatype: string;
  /** Stored dims (i, j, k) before reorientation. */
  dims: [number, number, number];
  /** Voxel axis (0 = i, 1 = j, 2 = k) shown as columns, rows and slices, and whether each is flipped. */
  axes: { column: AxisMapping; row: AxisMapping; slice: AxisMapping };
  orientationSource: OrientationSource;
  /** Voxel-to-world (RAS+) affine, 4x4 row-major. */
  affine: number[][];
  scaling: { slope: number; intercept: number };
  warnings: string[];
  getSlice(index: number): NiftiSlice;
}

export interface AxisMapping {
  axis: 0 | 1 | 2;
  flipped: boolean;
}

export interface ReadNiftiOptions {
  file?: string;
  maxVoxels?: number;
  maxFileBytes?: number;
  minAxialCosine?: number;
}

type VoxelReader = (view: DataView, offset: number, littleEndian: boolean) => number;

const DATATYPES: Record<number, { name: string; bytes: number; read: VoxelReader }> = {
  2: { name: 'uint8', bytes: 1, read: (v, o) => v.getUint8(o) },
  4: { name: 'int16', bytes: 2, read: (v, o, le) => v.getInt16(o, le) },
  8: { name: 'int32', bytes: 4, read: (v, o, le) => v.getInt32(o, le) },
  16: { name: 'float32', bytes: 4, read: (v, o, le) => v.getFloat32(o, le) },
  64: { name: 'float64', bytes: 8, read: (v, o, le) => v.getFloat64(o, le) },
  256: { name: 'int8', bytes: 1, read: (v, o) => v.getInt8(o) },
  512: { name: 'uint16', bytes: 2, read: (v, o, le) => v.getUint16(o, le) },
  768: { name: 'uint32', bytes: 4, read: (v, o, le) => v.getUint32(o, le) },
  1024: { name: 'int64', bytes: 8, read: (v, o, le) => Number(v.getBigInt64(o, le)) },
  1280: { name: 'uint64', bytes: 8, read: (v, o, le) => Number(v.getBigUint64(o, le)) },
};

/** Reads a NIfTI volume. Values are converted to Float32 slice by slice, on demand. */
export async function readNifti(input: string | Uint8Array, options: ReadNiftiOptions = {}): Promise<NiftiVolume> {
  const file = options.file ?? (typeof input === 'string' ? input : '<buffer>');
  const maxFileBytes = options.maxFileBytes ?? MEDICAL_DEFAULTS.maxFileBytes;
  let bytes: Uint8Array;
  if (typeof input === 'string') {
    try {
      const { size } = await stat(input);
      if (size > maxFileBytes) throw new MedicalImageError(file, 'too-large', `${size} bytes exceeds the limit of ${maxFileBytes}`);
      bytes = await readFile(input);
    } catch (error) {
      if (error instanceof MedicalImageError) throw error;
      throw new MedicalImageError(file, 'io', `cannot read file: ${describeThrown(error)}`, { cause: error });
    }
  } else {
    bytes = input;
  }
  let data = toArrayBuffer(bytes);
  if (isCompressed(data)) {
    try {
      // Capped so that a small .gz cannot inflate into gigabytes.
      const inflated = gunzipSync(bytes, { maxOutputLength: maxFileBytes });
      data = toArrayBuffer(inflated);
    } catch (error) {
      const tooBig = error instanceof RangeError;
      throw new MedicalImageError(
        file,
        tooBig ? 'too-large' : 'corrupt',
        tooBig ? `inflates to more than ${maxFileBytes} bytes` : `corrupt gzip stream: ${describeThrown(error)}`,
        { cause: error },
      );
    }
  }
  if (!isNIFTI(data)) throw new MedicalImageError(file, 'not-nifti', 'not a NIfTI-1/2 file (bad sizeof_hdr or magic)');

  let header: NIFTI1 | NIFTI2;
  try {
    header = readHeader(data);
  } catch (error) {
    throw new MedicalImageError(file, 'corrupt', `cannot read the NIfTI header: ${describeThrown(error)}`, { cause: error });
  }
  const warnings: string[] = [];
  const dimCount = header.dims[0] ?? 0;
  const dims: [number, number, number] = [header.dims[1] ?? 0, header.dims[2] ?? 0, dimCount >= 3 ? (header.dims[3] ?? 1) : 1];
  if (dimCount < 2 || dims.some((dim) => !Number.isInteger(dim) || dim < 1)) {
    throw new MedicalImageError(file, 'corrupt', `invalid dimensions ${header.dims.join(',')}`);
  }
  const extraVolumes = header.dims.slice(4, dimCount + 1).reduce((product, dim) => product * Math.max(1, dim), 1);
  if (extraVolumes > 1) warnings.push(`${dimCount}-D volume with ${extraVolumes} 3-D volumes: the first is read`);

  const voxels = dims[0] * dims[1] * dims[2];
  const maxVoxels = options.maxVoxels ?? MEDICAL_DEFAULTS.maxVoxels;
  if (voxels > maxVoxels) {
    throw new MedicalImageError(file, 'too-large', `${dims.join('x')} = ${voxels} voxels exceeds the limit of ${maxVoxels}`);
  }
  const datatype = DATATYPES[header.datatypeCode];
  if (!datatype) {
    throw new MedicalImageError(
      file,
      'unsupported-image',
      `NIfTI datatype ${header.datatypeCode} (${header.getDatatypeCodeString(header.datatypeCode)}) is not supported: scalar types only`,
    );
  }
  const expectedBytes = voxels * datatype.bytes;
  if (header.vox_offset + expectedBytes > data.byteLength) {
    throw new MedicalImageError(
      file,
      'truncated',
      `truncated NIfTI file: ${dims.join('x')} ${datatype.name} needs ${expectedBytes} bytes from offset ${header.vox_offset}, file has ${data.byteLength}`,
    );
  }
  const image = readImage(header, data);
  const view = new DataView(image, 0, expectedBytes);

  // NIfTI says scaling applies only when scl_slope is nonzero (and finite).
  const scaled = Number.isFinite(header.scl_slope) && header.scl_slope !== 0;
  const slope = scaled ? header.scl_slope : 1;
  const intercept = scaled && Number.isFinite(header.scl_inter) ? header.scl_inter : 0;

  const orientationSource: OrientationSource =
    header.sform_code > 0 && header.sform_code >= header.qform_code ? 'sform' : header.qform_code > 0 ? 'qform' : 'pixdim';
  if (orientationSource === 'pixdim') {
    warnings.push('no sform or qform: orientation is unknown, voxel axes are taken as R, A, S (NIfTI method 1)');
  }
  const affine = header.affine.map((row) => [...row]);
  const axes = mapAxes(affine);
  const minCosine = options.minAxialCosine ?? MEDICAL_DEFAULTS.minAxialCosine;
  const sliceAxisColumn = axisVector(affine, axes.slice.axis);
  const sliceCosine = Math.abs(sliceAxisColumn[2]) / (Math.hypot(...sliceAxisColumn) || 1);
  if (sliceCosine < minCosine) {
    warnings.push(`volume is oblique: the slice axis makes cos ${sliceCosine.toFixed(2)} with head-foot; slices are not truly axial`);
  }

  const size = (mapping: AxisMapping) => dims[mapping.axis];
  const width = size(axes.column);
  const height = size(axes.row);
  const sliceCount = size(axes.slice);
  const strides: [number, number, number] = [1, dims[0], dims[0] * dims[1]];
  const spacingOf = (mapping: AxisMapping) => Math.hypot(...axisVector(affine, mapping.axis));

  const getSlice = (index: number): NiftiSlice => {
    if (!Number.isInteger(index) || index < 0 || index >= sliceCount) {
      throw new RangeError(`slice ${index} out of range 0..${sliceCount - 1}`);
    }
    const sliceVoxel = axes.slice.flipped ? sliceCount - 1 - index : index;
    const hu = new Float32Array(width * height);
    const columnStride = strides[axes.column.axis];
    const rowStride = strides[axes.row.axis];
    const base = sliceVoxel * strides[axes.slice.axis];
    for (let row = 0; row < height; row++) {
      const rowVoxel = axes.row.flipped ? height - 1 - row : row;
      for (let column = 0; column < width; column++) {
        const columnVoxel = axes.column.flipped ? width - 1 - column : column;
        const voxel = base + rowVoxel * rowStride + columnVoxel * columnStride;
        hu[row * width + column] = datatype.read(view, voxel * datatype.bytes, header.littleEndian) * slope + intercept;
      }
    }
    const ijk = [0, 0, 0];
    ijk[axes.slice.axis] = sliceVoxel;
    ijk[axes.column.axis] = (width - 1) / 2;
    ijk[axes.row.axis] = (height - 1) / 2;
    const zRow = affine[2] as number[];
    const z = (zRow[0] as number) * (ijk[0] as number) + (zRow[1] as number) * (ijk[1] as number) + (zRow[2] as number) * (ijk[2] as number) + (zRow[3] as number);
    return { index, hu, width, height, z };
  };

  return {
    file,
    sliceCount,
    width,
    height,
    spacing: [spacingOf(axes.column), spacingOf(axes.row), spacingOf(axes.slice)],
    datatype: datatype.name,
    dims,
    axes,
    orientationSource,
    affine,
    scaling: { slope, intercept },
    warnings,
    getSlice,
  };
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  // nifti-reader-js wants an ArrayBuffer that starts at the file's first byte.
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer) {
    return bytes.buffer;
  }
  return bytes.slice().buffer as ArrayBuffer;
}

function axisVector(affine: number[][], axis: number): [number, number, number] {
  return [0, 1, 2].map((row) => (affine[row] as number[])[axis] as number) as [number, number, number];
}

/**
 * Assigns voxel axes to world x (columns), y (rows) and z (slices) by the largest direction cosine, each voxel
 * axis used once, and decides the flips for radiological display:
 * - columns towards patient left = world -x, rows towards posterior = world -y, slices towards superior = +z.
 */
export function mapAxes(affine: number[][]): { column: AxisMapping; row: AxisMapping; slice: AxisMapping } {
  const vectors = [0, 1, 2].map((axis) => {
    const vector = axisVector(affine, axis);
    const length = Math.hypot(...vector) || 1;
    return vector.map((value) => value / length);
  });
  // Try all 6 assignments and keep the one with the largest summed |cosine|: robust for oblique volumes.
  const permutations: [0 | 1 | 2, 0 | 1 | 2, 0 | 1 | 2][] = [
    [0, 1, 2],
    [0, 2, 1],
    [1, 0, 2],
    [1, 2, 0],
    [2, 0, 1],
    [2, 1, 0],
  ];
  let best = permutations[0] as [0 | 1 | 2, 0 | 1 | 2, 0 | 1 | 2];
  let bestScore = -1;
  for (const permutation of permutations) {
    // permutation[w] = the voxel axis assigned to world axis w.
    const score = permutation.reduce<number>(
      (sum, axis, world) => sum + Math.abs((vectors[axis] as number[])[world] as number),
      0,
    );
    if (score > bestScore + 1e-9) {
      best = permutation;
      bestScore = score;
    }
  }
  const cosine = (world: number) => (vectors[best[world] as number] as number[])[world] as number;
  return {
    column: { axis: best[0], flipped: cosine(0) > 0 },
    row: { axis: best[1], flipped: cosine(1) > 0 },
    slice: { axis: best[2], flipped: cosine(2) < 0 },
  };
}
