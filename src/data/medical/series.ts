/**
 * DICOM series folders: every DICOM file of a folder, grouped by Series Instance UID and put in anatomical order.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readDicomHeader, readDicomSlice, sliceNormal } from './dicom.ts';
import type { DicomHeader, DicomSlice, ReadDicomOptions, Vec3 } from './dicom.ts';
import { MedicalImageError, describeThrown } from './errors.ts';

/** How a series was ordered: the first key that every slice of the series has and that tells slices apart. */
export type SeriesOrder = 'imagePosition' | 'sliceLocation' | 'instanceNumber' | 'none';

export interface SeriesSlice {
  /** Zero-based position in the sorted series (inferior to superior when sorted by position). */
  index: number;
  file: string;
  /**
   * Position along the slice normal in mm (Image Position Patient projected on the normal of Image Orientation
   * Patient); for axial slices this is the patient z. Undefined when the file has no position or orientation.
   */
  z: number | undefined;
  header: DicomHeader;
  /** Decodes the pixel data (the file is read again, so a long series is not held in memory). */
  load(): Promise<DicomSlice>;
}

export interface DicomSeries {
  seriesInstanceUid: string;
  sortedBy: SeriesOrder;
  slices: SeriesSlice[];
  /** Per-series warnings: file warnings (each once, with how many files had it) and ordering problems. */
  warnings: string[];
}

export interface DicomSeriesResult {
  folder: string;
  /** Largest series first. */
  series: DicomSeries[];
  /** Files that are not readable DICOM images, each with its reason. Non-DICOM files are listed too. */
  failures: MedicalImageError[];
  warnings: string[];
}

/** Reads the headers of all files of a folder (not recursive) and returns the sorted series found there. */
export async function readDicomSeries(folder: string, options: ReadDicomOptions = {}): Promise<DicomSeriesResult> {
  let names: string[];
  try {
    names = (await readdir(folder, { withFileTypes: true })).filter((entry) => entry.isFile()).map((entry) => entry.name);
  } catch (error) {
    throw new MedicalImageError(folder, 'io', `cannot read folder: ${describeThrown(error)}`, { cause: error });
  }
  // A label given for buffer input must not rename every file of the folder.
  const { file: _label, ...fileOptions } = options;
  const headers: DicomHeader[] = [];
  const failures: MedicalImageError[] = [];
  for (const name of names.sort()) {
    // Files are read one by one: a series of hundreds of slices must not be held in memory at once.
    try {
      headers.push(await readDicomHeader(join(folder, name), fileOptions));
    } catch (error) {
      if (!(error instanceof MedicalImageError)) throw error;
      failures.push(error);
    }
  }
  const warnings: string[] = [];
  if (headers.length === 0) warnings.push(`no readable DICOM file in ${folder}`);

  const groups = new Map<string, DicomHeader[]>();
  for (const header of headers) {
    const uid = header.meta.seriesInstanceUid ?? '(no Series Instance UID)';
    const group = groups.get(uid);
    if (group) group.push(header);
    else groups.set(uid, [header]);
  }
  if (groups.size > 1) warnings.push(`${groups.size} series in ${folder}; they are returned separately`);

  const series = [...groups.entries()]
    .map(([uid, group]) => sortSeries(uid, group, fileOptions))
    .sort((a, b) => b.slices.length - a.slices.length);
  return { folder, series, failures, warnings };
}

function sortSeries(uid: string, headers: DicomHeader[], options: ReadDicomOptions): DicomSeries {
  const warnings = summariseWarnings(headers);
  const orientation = headers[0]?.meta.orientation;
  const normal: Vec3 = orientation ? sliceNormal(orientation) : [0, 0, 1];
  const positionOf = (header: DicomHeader): number | undefined => {
    const position = header.meta.imagePosition;
    if (!position || !header.meta.orientation) return undefined;
    return position[0] * normal[0] + position[1] * normal[1] + position[2] * normal[2];
  };
  if (headers.some((header) => !sameOrientation(header.meta.orientation, orientation))) {
    warnings.push('slices have different Image Orientation (Patient); they are ordered along the first slice normal');
  }

  const keys: [SeriesOrder, (header: DicomHeader) => number | undefined][] = [
    ['imagePosition', positionOf],
    ['sliceLocation', (header) => header.meta.sliceLocation],
    ['instanceNumber', (header) => header.meta.instanceNumber],
  ];
  let sortedBy: SeriesOrder = 'none';
  let ordered = headers;
  for (const [name, key] of keys) {
    const values = headers.map(key);
    if (values.some((value) => value === undefined)) continue;
    const distinct = new Set(values).size;
    if (distinct < headers.length && headers.length > 1) {
      warnings.push(`${name} does not tell all ${headers.length} slices apart (${distinct} distinct values)`);
      if (name !== 'instanceNumber') continue;
    }
    ordered = [...headers].sort((a, b) => (key(a) as number) - (key(b) as number));
    sortedBy = name;
    break;
  }
  if (sortedBy === 'none' && headers.length > 1) {
    warnings.push('no Image Position, Slice Location or Instance Number on every slice: the order is unknown');
  } else if (sortedBy !== 'imagePosition' && headers.length > 1) {
    warnings.push(`ordered by ${sortedBy}: Image Position/Orientation (Patient) is missing on some slices`);
  }

  const slices = ordered.map((header, index) => ({
    index,
    file: header.file,
    z: positionOf(header),
    header,
    load: () => readDicomSlice(header.file, options),
  }));
  return { seriesInstanceUid: uid, sortedBy, slices, warnings };
}

function sameOrientation(a: readonly number[] | undefined, b: readonly number[] | undefined): boolean {
  if (!a || !b) return a === b;
  return a.every((value, i) => Math.abs(value - (b[i] as number)) < 1e-3);
}

/** One line per distinct warning, instead of the same warning for each of hundreds of slices. */
function summariseWarnings(headers: DicomHeader[]): string[] {
  const counts = new Map<string, number>();
  for (const header of headers) {
    for (const warning of new Set(header.warnings)) counts.set(warning, (counts.get(warning) ?? 0) + 1);
  }
  return [...counts].map(([warning, count]) =>
    count === headers.length ? warning : `${warning} (${count} of ${headers.length} files)`,
  );
}
