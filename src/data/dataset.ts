/**
 * A dataset is a folder with one subfolder per class inside each split folder
 * (`training-images/CT_COVID`, `testing-images/CT_NonCOVID`, ...), optionally with a metadata.csv
 * (path, class, ucsd_split, patient_id) beside the split folders.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { orderBy } from 'natural-orderby';
import type { ClassSpec, Config } from '../config/index.ts';
import { parseCsv } from './csv.ts';
import { DatasetError } from './errors.ts';

export interface ImageRecord {
  /** Absolute path. */
  path: string;
  /** Path relative to the dataset folder, with forward slashes: the key of metadata.csv and manifests. */
  relPath: string;
  className: string;
  label: 0 | 1;
}

export interface MetadataRow {
  className: string;
  ucsdSplit: string;
  patientId: string;
}

export type SplitFolder = 'train' | 'test';

export function datasetPath(dataRoot: string, config: Config): string {
  const dir = join(dataRoot, config.data.dataset);
  if (!existsSync(dir)) {
    throw new DatasetError(
      `dataset '${config.data.dataset}' not found at ${dir}. Point covid-ct at the folder that holds it with --data DIR or COVID_CT_DATA.`,
    );
  }
  return dir;
}

/** Whether `dir` is itself a set of class folders (a subfolder for every class), not a folder holding datasets. */
export function holdsClassFolders(dir: string, classes: ClassSpec[]): boolean {
  return classes.every((spec) => existsSync(join(dir, spec.name)) && statSync(join(dir, spec.name)).isDirectory());
}

/** Lists the images of one split folder, natural-sorted per class. Missing or empty class folders are errors. */
export function listImages(datasetDir: string, folder: string, classes: ClassSpec[]): ImageRecord[] {
  const splitDir = join(datasetDir, folder);
  if (!existsSync(splitDir)) throw new DatasetError(`split folder not found: ${splitDir}`);
  const records: ImageRecord[] = [];
  for (const spec of classes) {
    const classDir = join(splitDir, spec.name);
    if (!existsSync(classDir) || !statSync(classDir).isDirectory()) {
      const present = readdirSync(splitDir).filter((name) => statSync(join(splitDir, name)).isDirectory());
      throw new DatasetError(`class folder missing: ${classDir} (folders present: ${present.join(', ') || 'none'})`);
    }
    const files = orderBy(
      readdirSync(classDir).filter((name) => !name.startsWith('.') && statSync(join(classDir, name)).isFile()),
      [(name: string) => name],
    );
    if (files.length === 0) throw new DatasetError(`class folder is empty: ${classDir}`);
    for (const name of files) {
      records.push({ path: join(classDir, name), relPath: `${folder}/${spec.name}/${name}`, className: spec.name, label: spec.label });
    }
  }
  return records;
}

export function listSplit(datasetDir: string, split: SplitFolder, config: Config): ImageRecord[] {
  return listImages(datasetDir, split === 'train' ? config.data.trainDir : config.data.testDir, config.data.classes);
}

/** metadata.csv keyed by relative path, or null when the dataset has none. */
export function readMetadata(datasetDir: string): Map<string, MetadataRow> | null {
  const file = join(datasetDir, 'metadata.csv');
  if (!existsSync(file)) return null;
  const rows = parseCsv(readFileSync(file, 'utf8'));
  const first = rows[0];
  if (!first || !('path' in first) || !('patient_id' in first)) {
    throw new DatasetError(`${file}: expected a header with at least 'path' and 'patient_id'`);
  }
  return new Map(rows.map((r) => [r.path!, { className: r.class ?? '', ucsdSplit: r.ucsd_split ?? '', patientId: r.patient_id ?? '' }]));
}

/** A patient id from metadata when present, else from the file name by the configured regex, else the file name. */
export function patientIdOf(record: ImageRecord, metadata: Map<string, MetadataRow> | null, patientRegex: string): string {
  const fromMetadata = metadata?.get(record.relPath)?.patientId;
  if (fromMetadata) return `${record.className}:${fromMetadata}`;
  const name = record.relPath.slice(record.relPath.lastIndexOf('/') + 1);
  const match = new RegExp(patientRegex).exec(name);
  return `${record.className}:${match?.[1] ?? name}`;
}
