/**
 * Train/validation splits of the training folder, written as a JSON manifest (path, sha256, label, split,
 * group) so a run can be reproduced exactly, with a leakage count: groups (patients) found on both sides.
 *  - ordered: the published method: per class, natural-sorted names, the last valFraction held out;
 *  - patient: whole patients to one side, about valFraction of each class's images to validation (seeded);
 *  - official: the dataset's own train/val assignment (metadata.csv `ucsd_split`);
 *  - source: whole source groups (provenance.csv `source_group`, or another column) to one side, across classes,
 *    about valFraction of each class's images to validation (seeded).
 * With folds (patient or source), the groups are dealt into k folds instead and one fold is the validation side:
 * k runs, one per fold, hold out every image exactly once (group k-fold cross-validation).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { orderBy } from 'natural-orderby';
import { FOLD_SPLIT_METHODS } from '../config/index.ts';
import type { Config, SplitMethod } from '../config/index.ts';
import type { ImageCache } from './cache.ts';
import { parseCsv } from './csv.ts';
import type { ImageRecord, MetadataRow } from './dataset.ts';
import { patientIdOf, readMetadata } from './dataset.ts';
import { DatasetError } from './errors.ts';
import { Rng } from './random.ts';

export interface SplitEntry {
  path: string;
  sha256: string;
  label: 0 | 1;
  className: string;
  split: 'train' | 'val';
  group: string;
}

export interface SplitManifest {
  method: SplitMethod;
  seed: number;
  valFraction: number;
  dataset: string;
  counts: Record<string, { train: number; val: number }>;
  /** Cross-validation: the validation side is fold `index` (1-based) of `count`. */
  fold?: { index: number; count: number };
  /** Groups (patients; source groups for `source`) with images on both sides; 0 for `patient`, `official` and `source`. */
  leakage: { groupsOnBothSides: number; groups: string[] };
  entries: SplitEntry[];
}

export interface SplitOptions {
  method: SplitMethod;
  seed: number;
  valFraction: number;
  metadata: Map<string, MetadataRow> | null;
  patientRegex: string;
  dataset: string;
  /** sha256 of each record's file, by absolute path. */
  hashes: Map<string, string>;
  /** Method `source`: the group of each image by relative path (see `readGroupColumn`). */
  sourceGroups?: Map<string, string> | null;
  /** Group k-fold: fold `index` (1-based) of `count` is validation, in place of valFraction (patient and source only). */
  fold?: { index: number; count: number } | null;
}

export const DEFAULT_GROUP_COLUMN = 'source_group';

/**
 * One column of the dataset's provenance.csv or metadata.csv (the first of the two that has it), keyed by the
 * image's relative path: the groups of split method `source`.
 */
export function readGroupColumn(datasetDir: string, column: string = DEFAULT_GROUP_COLUMN): { groups: Map<string, string>; file: string } {
  const looked: string[] = [];
  for (const name of ['provenance.csv', 'metadata.csv']) {
    const file = join(datasetDir, name);
    if (!existsSync(file)) continue;
    const rows = parseCsv(readFileSync(file, 'utf8'));
    const first = rows[0];
    looked.push(`${name} (columns: ${first ? Object.keys(first).join(', ') : 'none'})`);
    if (!first || !('path' in first) || !(column in first)) continue;
    return { groups: new Map(rows.map((r) => [r.path!, r[column]!])), file };
  }
  throw new DatasetError(
    `split method 'source': no column '${column}' in ${looked.length ? looked.join('; ') : `provenance.csv or metadata.csv (neither exists in ${datasetDir})`}`,
  );
}

function sourceGroupOf(record: ImageRecord, groups: Map<string, string> | null | undefined): string {
  if (!groups) throw new DatasetError("split method 'source' needs source groups: the dataset's provenance.csv with a source_group column, or --group-column");
  const group = groups.get(record.relPath);
  if (!group) throw new DatasetError(`split method 'source': ${record.relPath} has no group`);
  return group;
}

/**
 * Whole groups to one side, across classes (a group with images of both classes moves as one): groups in a
 * seeded order, each taken when it brings the validation counts closer to valFraction of every class
 * (sum of absolute deviations), as `patient` does per class.
 */
function sourceValidation(records: readonly ImageRecord[], groupOf: (r: ImageRecord) => string, fraction: number, seed: number): Set<string> {
  const rng = new Rng(seed);
  const { classes, target } = classTargets(records, fraction);
  const groups = groupRecords(records, groupOf);
  const taken = new Map(classes.map((c) => [c, 0]));
  const deviation = (counts: Map<string, number>) => classes.reduce((sum, c) => sum + Math.abs(counts.get(c)! - target.get(c)!), 0);
  const val = new Set<string>();
  for (const group of rng.shuffled(orderBy([...groups.keys()], [(g: string) => g]))) {
    const members = groups.get(group)!;
    const after = new Map(taken);
    for (const r of members) after.set(r.className, after.get(r.className)! + 1);
    if (deviation(after) < deviation(taken)) {
      for (const [c, n] of after) taken.set(c, n);
      for (const r of members) val.add(r.path);
    }
  }
  return val;
}

function byClass(records: readonly ImageRecord[]): Map<string, ImageRecord[]> {
  const groups = new Map<string, ImageRecord[]>();
  for (const r of records) groups.set(r.className, [...(groups.get(r.className) ?? []), r]);
  return groups;
}

/** The class names and, per class, `share` of its image count: the validation target of the group splitters. */
function classTargets(records: readonly ImageRecord[], share: number): { classes: string[]; target: Map<string, number> } {
  const members = byClass(records);
  return { classes: [...members.keys()], target: new Map([...members].map(([c, rs]) => [c, share * rs.length])) };
}

function groupRecords(records: readonly ImageRecord[], groupOf: (r: ImageRecord) => string): Map<string, ImageRecord[]> {
  const groups = new Map<string, ImageRecord[]>();
  for (const r of records) {
    const key = groupOf(r);
    const members = groups.get(key);
    if (members) members.push(r);
    else groups.set(key, [r]);
  }
  return groups;
}

/** Keras' validation_split arithmetic: int(fraction * n) held out. */
function heldOutCount(n: number, fraction: number): number {
  return Math.floor(fraction * n);
}

function orderedValidation(records: readonly ImageRecord[], fraction: number): Set<string> {
  const val = new Set<string>();
  for (const members of byClass(records).values()) {
    const sorted = orderBy(members, [(r: ImageRecord) => r.relPath.slice(r.relPath.lastIndexOf('/') + 1)]);
    for (const r of sorted.slice(sorted.length - heldOutCount(sorted.length, fraction))) val.add(r.path);
  }
  return val;
}

function patientValidation(records: readonly ImageRecord[], groupOf: (r: ImageRecord) => string, fraction: number, seed: number): Set<string> {
  const val = new Set<string>();
  const rng = new Rng(seed);
  for (const members of byClass(records).values()) {
    const target = fraction * members.length;
    const groups = groupRecords(members, groupOf);
    // Sorted before shuffling so the draw depends on the seed, not on the directory listing order.
    const shuffled = rng.shuffled(orderBy([...groups.keys()], [(g: string) => g]));
    let taken = 0;
    for (const group of shuffled) {
      const size = groups.get(group)!.length;
      // Take a patient when it brings the validation count closer to the target.
      if (Math.abs(taken + size - target) < Math.abs(taken - target)) {
        taken += size;
        for (const r of groups.get(group)!) val.add(r.path);
      }
    }
  }
  return val;
}

/**
 * Group k-fold: groups in a seeded order, largest first, each dealt to the fold where it brings every class's
 * count closest to 1/k of that class (the least squared excess; ties to the emptier, then the lower fold), so the
 * folds are balanced per class although groups vary in size; returns the images of fold `index` (1-based).
 */
function foldValidation(records: readonly ImageRecord[], groupOf: (r: ImageRecord) => string, fold: { index: number; count: number }, seed: number): Set<string> {
  const { classes, target } = classTargets(records, 1 / fold.count);
  const groups = groupRecords(records, groupOf);
  const order = new Rng(seed).shuffled(orderBy([...groups.keys()], [(g: string) => g]));
  // Array.prototype.sort is stable: equal sizes keep the seeded order.
  order.sort((a, b) => groups.get(b)!.length - groups.get(a)!.length);
  const counts = Array.from({ length: fold.count }, () => new Map(classes.map((c) => [c, 0])));
  const val = new Set<string>();
  for (const group of order) {
    const members = groups.get(group)!;
    const adds = new Map(classes.map((c) => [c, members.filter((r) => r.className === c).length]));
    // Change in the sum over classes of (count - target)^2 when the group joins a fold.
    const cost = (f: number) => classes.reduce((sum, c) => sum + adds.get(c)! * (2 * (counts[f]!.get(c)! - target.get(c)!) + adds.get(c)!), 0);
    const size = (f: number) => [...counts[f]!.values()].reduce((a, b) => a + b, 0);
    let best = 0;
    for (let f = 1; f < fold.count; f++) {
      if (cost(f) < cost(best) || (cost(f) === cost(best) && size(f) < size(best))) best = f;
    }
    for (const [c, n] of adds) counts[best]!.set(c, counts[best]!.get(c)! + n);
    if (best === fold.index - 1) for (const r of members) val.add(r.path);
  }
  for (const c of classes) {
    if (counts[fold.index - 1]!.get(c) === 0) throw new DatasetError(`split: fold ${fold.index} of ${fold.count} holds no ${c} image (too few groups for ${fold.count} folds)`);
  }
  return val;
}

function officialValidation(records: readonly ImageRecord[], metadata: Map<string, MetadataRow> | null): Set<string> {
  if (!metadata) throw new DatasetError("split method 'official' needs the dataset's metadata.csv with a ucsd_split column");
  const val = new Set<string>();
  for (const r of records) {
    const row = metadata.get(r.relPath);
    if (!row) throw new DatasetError(`split method 'official': ${r.relPath} is not in metadata.csv`);
    if (row.ucsdSplit === 'val') val.add(r.path);
    else if (row.ucsdSplit !== 'train') throw new DatasetError(`split method 'official': ${r.relPath} has ucsd_split '${row.ucsdSplit}', expected train or val`);
  }
  return val;
}

export function makeSplit(records: readonly ImageRecord[], options: SplitOptions): SplitManifest {
  const groupOf =
    options.method === 'source'
      ? (r: ImageRecord) => sourceGroupOf(r, options.sourceGroups)
      : (r: ImageRecord) => patientIdOf(r, options.metadata, options.patientRegex);
  if (options.fold && !FOLD_SPLIT_METHODS.includes(options.method)) {
    throw new DatasetError(`split method '${options.method}' has no folds: cross-validation needs whole groups (patient or source)`);
  }
  const val = options.fold
    ? foldValidation(records, groupOf, options.fold, options.seed)
    : options.method === 'ordered'
      ? orderedValidation(records, options.valFraction)
      : options.method === 'patient'
        ? patientValidation(records, groupOf, options.valFraction, options.seed)
        : options.method === 'source'
          ? sourceValidation(records, groupOf, options.valFraction, options.seed)
          : officialValidation(records, options.metadata);

  const entries: SplitEntry[] = records.map((r) => {
    const sha256 = options.hashes.get(r.path);
    if (!sha256) throw new Error(`makeSplit: no sha256 for ${r.path}`);
    return { path: r.relPath, sha256, label: r.label, className: r.className, split: val.has(r.path) ? 'val' : 'train', group: groupOf(r) };
  });
  const counts: SplitManifest['counts'] = {};
  const sides = new Map<string, Set<string>>();
  for (const e of entries) {
    counts[e.className] ??= { train: 0, val: 0 };
    counts[e.className]![e.split]++;
    sides.set(e.group, (sides.get(e.group) ?? new Set()).add(e.split));
  }
  const leaked = [...sides].filter(([, s]) => s.size === 2).map(([g]) => g);
  return {
    method: options.method,
    seed: options.seed,
    valFraction: options.fold ? 1 / options.fold.count : options.valFraction,
    dataset: options.dataset,
    counts,
    ...(options.fold && { fold: options.fold }),
    leakage: { groupsOnBothSides: leaked.length, groups: orderBy(leaked, [(g: string) => g]) },
    entries,
  };
}

/** Checks a manifest against the files now on disk: same paths and same content. */
export function verifyManifest(manifest: SplitManifest, records: readonly ImageRecord[], hashes: Map<string, string>): void {
  const byRel = new Map(records.map((r) => [r.relPath, r]));
  for (const e of manifest.entries) {
    const r = byRel.get(e.path);
    if (!r) throw new DatasetError(`split manifest: ${e.path} is not in the dataset any more`);
    if (hashes.get(r.path) !== e.sha256) throw new DatasetError(`split manifest: ${e.path} changed since the split was made (sha256 differs)`);
  }
}

/**
 * The split of a dataset's training images as the config asks for it: hashes every file (through the cache's
 * index), reads metadata.csv and, for `source`, the group column. What `data split` and `train` both run.
 */
export async function splitTrainingImages(
  records: readonly ImageRecord[],
  datasetDir: string,
  config: Config,
  cache: ImageCache,
  options: { dataset?: string; groupColumn?: string } = {},
): Promise<SplitManifest> {
  const hashes = new Map<string, string>();
  for (const r of records) hashes.set(r.path, await cache.sha256(r.path));
  return makeSplit(records, {
    method: config.split,
    seed: config.seed,
    valFraction: config.data.valFraction,
    metadata: readMetadata(datasetDir),
    patientRegex: config.data.patientRegex,
    dataset: options.dataset ?? config.data.dataset,
    hashes,
    sourceGroups: config.split === 'source' ? readGroupColumn(datasetDir, options.groupColumn).groups : null,
    fold: config.folds > 0 ? { index: config.fold, count: config.folds } : null,
  });
}
