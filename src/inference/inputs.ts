/**
 * What `predict` and `serve` can be given, turned into studies of slices. Everything is recognised by content,
 * never by file name: an image (PNG, JPEG, BMP, TIFF, WebP, GIF), a DICOM slice, a folder of DICOM slices (one
 * study per Series Instance UID, in anatomical order), a NIfTI volume (.nii or .nii.gz, one study).
 * Slices are loaded lazily, so a long series is never held in memory at once.
 */
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { orderBy } from 'natural-orderby';
import sharp from 'sharp';
import type { Config } from '../config/index.ts';
import { decodeBuffer, decodeImage, sniffFormat } from '../data/decode.ts';
import type { DecodedImage } from '../data/decode.ts';
import { ImageError } from '../data/errors.ts';
import { MedicalImageError, readDicomSeries, readDicomSlice, readNifti, sliceToRgb, sniffMedical } from '../data/medical/index.ts';
import type { DicomSlice, NiftiSlice, NiftiVolume, ReadDicomOptions, WindowSetting } from '../data/medical/index.ts';

export type InputKind = 'image' | 'dicom' | 'dicom-series' | 'nifti';

/** A slice ready for the model: RGB at the model's image size, and at its own size for heatmaps. */
export interface LoadedSlice {
  image: DecodedImage;
  warnings: string[];
}

export interface SliceSource {
  file: string;
  /** Position in the study (0 = most inferior for series and volumes); undefined for a lone image or slice. */
  slice: number | undefined;
  load(): Promise<LoadedSlice>;
}

export interface Study {
  /** The file or folder the user named (or the upload's name). */
  source: string;
  kind: InputKind;
  slices: SliceSource[];
  warnings: string[];
}

export interface InputFailure {
  file: string;
  slice?: number;
  reason: string;
}

export interface ExpandedInputs {
  studies: Study[];
  failures: InputFailure[];
}

export interface InputOptions {
  /** Square side the model takes (the model card's imageSize). */
  imageSize: number;
  /** Window for DICOM/NIfTI: fixed, or the DICOM file's own. */
  window: WindowSetting;
  config: Pick<Config, 'data' | 'medical'>;
  /** Overrides config.data.maxPixels / maxFileBytes for plain images (serve uses its own upload limits). */
  imageLimits?: { maxPixels: number; maxFileBytes: number };
}

/** Turns an input error into a failure entry; anything that is not an input problem is rethrown. */
export function asFailure(error: unknown, file: string, slice?: number): InputFailure {
  if (error instanceof ImageError) return { file: error.file, ...(slice !== undefined && { slice }), reason: error.reason };
  if (error instanceof MedicalImageError) return { file: error.file, ...(slice !== undefined && { slice }), reason: error.reason };
  throw error;
}

function dicomOptions(options: InputOptions, file?: string): ReadDicomOptions {
  const { medical } = options.config;
  return {
    ...(file !== undefined && { file }),
    limits: { maxRows: medical.maxRows, maxColumns: medical.maxColumns, maxPixelsPerSlice: medical.maxPixelsPerSlice, maxFileBytes: medical.maxFileBytes },
    minAxialCosine: medical.minAxialCosine,
  };
}

function imageLimits(options: InputOptions) {
  return options.imageLimits ?? { maxPixels: options.config.data.maxPixels, maxFileBytes: options.config.data.maxFileBytes };
}

/** Windowed RGB of a DICOM or NIfTI slice, resized to the model's square input as training images are. */
async function medicalToImage(slice: DicomSlice | NiftiSlice, options: InputOptions): Promise<LoadedSlice> {
  const rgb = sliceToRgb(slice, { window: options.window });
  const size = options.imageSize;
  const data = await sharp(rgb.rgb, { raw: { width: rgb.width, height: rgb.height, channels: 3 } })
    .resize(size, size, { fit: 'fill', kernel: 'linear' })
    .raw()
    .toBuffer();
  const warnings = [...('warnings' in slice ? slice.warnings : []), ...(rgb.warning ? [rgb.warning] : [])];
  return { image: { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: size, height: size }, warnings };
}

function niftiStudy(volume: NiftiVolume, source: string, options: InputOptions): Study {
  const slices: SliceSource[] = Array.from({ length: volume.sliceCount }, (_, index) => ({
    file: source,
    slice: index,
    load: () => medicalToImage(volume.getSlice(index), options),
  }));
  return { source, kind: 'nifti', slices, warnings: volume.warnings };
}

function dicomSliceStudy(file: string, options: InputOptions, bytes?: Uint8Array): Study {
  return {
    source: file,
    kind: 'dicom',
    slices: [{ file, slice: undefined, load: async () => medicalToImage(await readDicomSlice(bytes ?? file, dicomOptions(options, file)), options) }],
    warnings: [],
  };
}

/** One uploaded or in-memory file, recognised by content. `name` is only a label: it never touches the disk. */
export async function studyFromBytes(bytes: Uint8Array, name: string, options: InputOptions): Promise<Study> {
  const medical = sniffMedical(bytes);
  if (medical === 'dicom') {
    // Read now so a bad file is refused here, with its reason, rather than at prediction time.
    const slice = await readDicomSlice(bytes, dicomOptions(options, name));
    return { source: name, kind: 'dicom', slices: [{ file: name, slice: undefined, load: () => medicalToImage(slice, options) }], warnings: [] };
  }
  if (medical === 'nifti') {
    const volume = await readNifti(bytes, { file: name, maxVoxels: options.config.medical.maxVoxels, maxFileBytes: options.config.medical.maxFileBytes, minAxialCosine: options.config.medical.minAxialCosine });
    return niftiStudy(volume, name, options);
  }
  if (!sniffFormat(bytes)) throw new ImageError(name, 'not an image, DICOM or NIfTI file (recognised by content, not by name)');
  const image = await decodeBuffer(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { size: options.imageSize, name, limits: imageLimits(options) });
  return { source: name, kind: 'image', slices: [{ file: name, slice: undefined, load: async () => ({ image, warnings: [] }) }], warnings: [] };
}

type Sniffed = 'image' | 'dicom' | 'nifti' | null;

/** Reads only the head of a file: enough for every magic number (and a gzip'd NIfTI header). */
async function sniffFile(path: string): Promise<Sniffed> {
  const handle = await open(path, 'r');
  try {
    const head = new Uint8Array(4096);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    if (bytesRead === 0) throw new ImageError(path, 'empty file');
    const bytes = head.subarray(0, bytesRead);
    return sniffMedical(bytes) ?? (sniffFormat(bytes) ? 'image' : null);
  } finally {
    await handle.close();
  }
}

async function fileStudy(path: string, kind: Sniffed, options: InputOptions): Promise<Study> {
  switch (kind) {
    case 'dicom':
      return dicomSliceStudy(path, options);
    case 'nifti': {
      const volume = await readNifti(path, { maxVoxels: options.config.medical.maxVoxels, maxFileBytes: options.config.medical.maxFileBytes, minAxialCosine: options.config.medical.minAxialCosine });
      return niftiStudy(volume, path, options);
    }
    case 'image':
      return {
        source: path,
        kind: 'image',
        slices: [{ file: path, slice: undefined, load: async () => ({ image: await decodeImage(path, { size: options.imageSize, limits: imageLimits(options) }), warnings: [] }) }],
        warnings: [],
      };
    default:
      throw new ImageError(path, 'not an image, DICOM or NIfTI file (recognised by content, not by name)');
  }
}

/** DICOM files of one folder: one study per series (a lone slice stays a 'dicom' input). */
async function dicomFolderStudies(folder: string, dicomFiles: Set<string>, options: InputOptions, out: ExpandedInputs): Promise<void> {
  const result = await readDicomSeries(folder, dicomOptions(options));
  for (const failure of result.failures) {
    if (dicomFiles.has(failure.file)) out.failures.push({ file: failure.file, reason: failure.reason });
  }
  for (const series of result.series) {
    if (series.slices.length === 1) {
      out.studies.push({ ...dicomSliceStudy(series.slices[0]!.file, options), warnings: series.warnings });
      continue;
    }
    out.studies.push({
      source: `${folder} (series ${series.seriesInstanceUid})`,
      kind: 'dicom-series',
      slices: series.slices.map((slice) => ({ file: slice.file, slice: slice.index, load: async () => medicalToImage(await slice.load(), options) })),
      warnings: [...result.warnings, ...series.warnings, ...(series.sortedBy === 'imagePosition' ? [] : [`slices ordered by ${series.sortedBy}`])],
    });
  }
}

async function expandFolder(folder: string, options: InputOptions, out: ExpandedInputs): Promise<void> {
  const entries = orderBy(await readdir(folder, { withFileTypes: true }), [(entry) => entry.name]);
  const dicomFiles = new Set<string>();
  const subfolders: string[] = [];
  for (const entry of entries) {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) {
      subfolders.push(path);
      continue;
    }
    if (!entry.isFile() || entry.name.startsWith('.')) continue;
    try {
      const kind = await sniffFile(path);
      if (kind === 'dicom') dicomFiles.add(path);
      else out.studies.push(await fileStudy(path, kind, options));
    } catch (error) {
      out.failures.push(asFailure(error, path));
    }
  }
  if (dicomFiles.size > 0) await dicomFolderStudies(folder, dicomFiles, options, out);
  for (const sub of subfolders) await expandFolder(sub, options, out);
}

/** Files and folders (recursively) to studies; unreadable inputs become failures with reasons. */
export async function expandInputs(paths: readonly string[], options: InputOptions): Promise<ExpandedInputs> {
  const out: ExpandedInputs = { studies: [], failures: [] };
  for (const path of paths) {
    try {
      const info = await stat(path);
      if (info.isDirectory()) await expandFolder(path, options, out);
      else if (info.size === 0) throw new ImageError(path, 'empty file');
      else out.studies.push(await fileStudy(path, await sniffFile(path), options));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'EACCES') out.failures.push({ file: path, reason: code === 'ENOENT' ? 'no such file or folder' : 'permission denied' });
      else out.failures.push(asFailure(error, path));
    }
  }
  return out;
}
