/**
 * What a dataset really holds, per split and class: counts, containers by content, modes, sizes, colour,
 * exact and near-duplicates (difference hash) within a split and across train/test, unreadable files,
 * and a 3x3 sample grid per class.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import type { Config } from '../config/index.ts';
import { DEFAULTS } from '../config/index.ts';
import type { ImageCache } from './cache.ts';
import type { ImageRecord, SplitFolder } from './dataset.ts';
import { listSplit } from './dataset.ts';
import type { DecodedImage, ImageFormat, ImageInfo } from './decode.ts';
import { probeImage, readImageFile } from './decode.ts';
import { ImageError } from './errors.ts';
import { mapLimit } from './loader.ts';

export interface ClassSummary {
  split: SplitFolder;
  className: string;
  count: number;
  readable: number;
  formats: Record<string, number>;
  modes: Record<string, number>;
  width: { min: number; max: number };
  height: { min: number; max: number };
  /** Images whose channels differ anywhere (not pure grey). */
  notGrey: number;
  /** Images with clearly coloured pixels (marks, arrows, tinted labels). */
  colourMarked: number;
  /** The same as fractions of the readable images (4 decimals): each container format, not grey, colour-marked. */
  shares: { formats: Record<string, number>; notGrey: number; colourMarked: number };
  /** Stored sizes: quartiles of width and height (linear interpolation, as numpy's default). */
  sizeQuartiles: { width: Quartiles; height: Quartiles };
  sampleGrid?: string;
}

export interface Quartiles {
  q1: number;
  median: number;
  q3: number;
}

/** Facts about one image file that a model could use as a shortcut: its container and its colour. */
export interface ImageFacts {
  path: string;
  sha256: string;
  format: ImageFormat;
  mode: string;
  width: number;
  height: number;
  /** Channels differ somewhere (not pure grey). */
  notGrey: boolean;
  /** Clearly coloured pixels (marks, arrows, tinted labels). */
  colourMarked: boolean;
}

export interface DuplicatePair {
  a: string;
  b: string;
  /** Hamming distance between the 64-bit difference hashes; 0 for exact duplicates by content. */
  distance: number;
  /** Correlation of the two 32x32 grey thumbnails (1 = same picture up to brightness and contrast). */
  correlation: number;
  kind: 'exact' | 'near';
  where: 'within-train' | 'within-test' | 'train-test';
  /** The two images carry different labels. */
  labelConflict: boolean;
}

export interface InspectReport {
  dataset: string;
  classes: ClassSummary[];
  duplicates: DuplicatePair[];
  unreadable: Array<{ file: string; reason: string }>;
}

interface Analysed {
  record: ImageRecord;
  split: SplitFolder;
  sha256: string;
  info: ImageInfo;
  hash: bigint;
  thumbnail: Float64Array;
  notGrey: boolean;
  colourMarked: boolean;
}

/** Header facts and colour of one file (colour judged on the cached size x size decode). */
async function analyseFile(path: string, cache: ImageCache, size: number): Promise<{ facts: ImageFacts; info: ImageInfo; image: DecodedImage }> {
  const info = await probeImage(await readImageFile(path, cache.limits), path, cache.limits);
  const image = await cache.load(path, size);
  const facts: ImageFacts = { path, sha256: image.sha256, format: info.format, mode: info.mode, width: info.width, height: info.height, ...colourStats(image) };
  return { facts, info, image };
}

/**
 * The shortcut facts (container by content, colour) of each file, keyed by path, computed as `data inspect` does
 * (colour on the size x size decode from the cache; use the training image size so the cache is shared).
 * An unreadable file is an ImageError.
 */
export async function imageFacts(paths: readonly string[], cache: ImageCache, size: number = DEFAULTS.data.imageSize): Promise<Map<string, ImageFacts>> {
  const facts = await mapLimit([...paths], 4, async (path) => (await analyseFile(path, cache, size)).facts);
  return new Map(facts.map((f) => [f.path, f]));
}

/** Quartiles with linear interpolation between order statistics (numpy.percentile's default). */
export function quartiles(values: readonly number[]): Quartiles {
  if (values.length === 0) return { q1: NaN, median: NaN, q3: NaN };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => {
    const position = q * (sorted.length - 1);
    const low = Math.floor(position);
    const high = Math.min(sorted.length - 1, low + 1);
    return sorted[low]! + (sorted[high]! - sorted[low]!) * (position - low);
  };
  return { q1: at(0.25), median: at(0.5), q3: at(0.75) };
}

function share(part: number, whole: number): number {
  return whole === 0 ? 0 : Number((part / whole).toFixed(4));
}

/** 64-bit difference hash: 9x8 grey thumbnail, one bit per horizontal neighbour comparison. */
export function differenceHash(image: DecodedImage): bigint {
  const cols = 9;
  const rows = 8;
  const cells = new Float64Array(cols * rows);
  const counts = new Float64Array(cols * rows);
  for (let y = 0; y < image.height; y++) {
    const cy = Math.min(rows - 1, Math.floor((y * rows) / image.height));
    for (let x = 0; x < image.width; x++) {
      const cx = Math.min(cols - 1, Math.floor((x * cols) / image.width));
      const o = (y * image.width + x) * 3;
      cells[cy * cols + cx]! += 0.299 * image.data[o]! + 0.587 * image.data[o + 1]! + 0.114 * image.data[o + 2]!;
      counts[cy * cols + cx]! += 1;
    }
  }
  let hash = 0n;
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < cols - 1; x++) {
      const left = cells[y * cols + x]! / counts[y * cols + x]!;
      const right = cells[y * cols + x + 1]! / counts[y * cols + x + 1]!;
      hash = (hash << 1n) | (left > right ? 1n : 0n);
    }
  }
  return hash;
}

function hamming(a: bigint, b: bigint): number {
  let x = a ^ b;
  let count = 0;
  while (x) {
    x &= x - 1n;
    count++;
  }
  return count;
}

function colourStats(image: DecodedImage): { notGrey: boolean; colourMarked: boolean } {
  let differing = 0;
  let coloured = 0;
  const pixels = image.width * image.height;
  for (let i = 0; i < pixels; i++) {
    const r = image.data[i * 3]!;
    const g = image.data[i * 3 + 1]!;
    const b = image.data[i * 3 + 2]!;
    const spread = Math.max(r, g, b) - Math.min(r, g, b);
    if (spread > 2) differing++;
    if (spread > 40) coloured++;
  }
  // Thresholds: JPEG chroma noise leaves small spreads on grey images; a mark is a strong spread on a few pixels.
  return { notGrey: differing > 0, colourMarked: coloured > pixels * 0.0005 };
}

/**
 * Near-duplicates: difference hashes at most NEAR_DUPLICATE_BITS apart (of 64) are candidates, confirmed when
 * their thumbnails correlate at NEAR_DUPLICATE_CORRELATION or more. CT slices all look alike to a 64-bit hash
 * (hundreds of pairs within 6 bits), so the hash only narrows the search.
 */
export const NEAR_DUPLICATE_BITS = 12;
export const NEAR_DUPLICATE_CORRELATION = 0.98;

/** 32x32 grey thumbnail, zero mean and unit norm, so a dot product is the correlation. */
export function normalisedThumbnail(image: DecodedImage, side = 32): Float64Array {
  const out = new Float64Array(side * side);
  for (let y = 0; y < image.height; y++) {
    const ty = Math.floor((y * side) / image.height);
    for (let x = 0; x < image.width; x++) {
      const o = (y * image.width + x) * 3;
      out[ty * side + Math.floor((x * side) / image.width)]! += image.data[o]! + image.data[o + 1]! + image.data[o + 2]!;
    }
  }
  const mean = out.reduce((a, b) => a + b, 0) / out.length;
  let norm = 0;
  for (let i = 0; i < out.length; i++) {
    out[i]! -= mean;
    norm += out[i]! * out[i]!;
  }
  norm = Math.sqrt(norm) || 1;
  for (let i = 0; i < out.length; i++) out[i]! /= norm;
  return out;
}

function dot(a: Float64Array, b: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}

export interface InspectOptions {
  /** Folder for the sample grids; none written when omitted. */
  gridDir?: string;
  strict?: boolean;
}

export async function inspectDataset(datasetDir: string, config: Config, cache: ImageCache, options: InspectOptions = {}): Promise<InspectReport> {
  const unreadable: InspectReport['unreadable'] = [];
  const analysed: Analysed[] = [];
  const size = config.data.imageSize;
  for (const split of ['train', 'test'] as const) {
    const records = listSplit(datasetDir, split, config);
    const results = await mapLimit(records, 4, async (record): Promise<Analysed | null> => {
      try {
        const { facts, info, image } = await analyseFile(record.path, cache, size);
        return { record, split, sha256: facts.sha256, info, hash: differenceHash(image), thumbnail: normalisedThumbnail(image), notGrey: facts.notGrey, colourMarked: facts.colourMarked };
      } catch (error) {
        if (options.strict || !(error instanceof ImageError)) throw error;
        unreadable.push({ file: error.file, reason: error.reason });
        return null;
      }
    });
    analysed.push(...results.filter((r): r is Analysed => r !== null));
  }

  const classes: ClassSummary[] = [];
  for (const split of ['train', 'test'] as const) {
    for (const spec of config.data.classes) {
      const members = analysed.filter((a) => a.split === split && a.record.className === spec.name);
      const count = members.length + unreadable.filter((u) => u.file.includes(`/${split === 'train' ? config.data.trainDir : config.data.testDir}/${spec.name}/`)).length;
      const tally = (key: (a: Analysed) => string) =>
        members.reduce<Record<string, number>>((acc, a) => ((acc[key(a)] = (acc[key(a)] ?? 0) + 1), acc), {});
      const formats = tally((a) => a.info.format);
      const notGrey = members.filter((a) => a.notGrey).length;
      const colourMarked = members.filter((a) => a.colourMarked).length;
      const summary: ClassSummary = {
        split,
        className: spec.name,
        count,
        readable: members.length,
        formats,
        modes: tally((a) => `${a.info.format.toUpperCase()} ${a.info.mode}`),
        width: { min: Math.min(...members.map((a) => a.info.width)), max: Math.max(...members.map((a) => a.info.width)) },
        height: { min: Math.min(...members.map((a) => a.info.height)), max: Math.max(...members.map((a) => a.info.height)) },
        notGrey,
        colourMarked,
        shares: {
          formats: Object.fromEntries(Object.entries(formats).map(([format, n]) => [format, share(n, members.length)])),
          notGrey: share(notGrey, members.length),
          colourMarked: share(colourMarked, members.length),
        },
        sizeQuartiles: { width: quartiles(members.map((a) => a.info.width)), height: quartiles(members.map((a) => a.info.height)) },
      };
      if (options.gridDir && members.length > 0) {
        summary.sampleGrid = join(options.gridDir, `samples-${split}-${spec.name}.png`);
        await writeGrid(members.slice(0, 9).map((a) => a.record.path), cache, summary.sampleGrid);
      }
      classes.push(summary);
    }
  }
  return { dataset: datasetDir, classes, duplicates: findDuplicates(analysed), unreadable };
}

function findDuplicates(analysed: Analysed[]): DuplicatePair[] {
  const pairs: DuplicatePair[] = [];
  for (let i = 0; i < analysed.length; i++) {
    for (let j = i + 1; j < analysed.length; j++) {
      const a = analysed[i]!;
      const b = analysed[j]!;
      const exact = a.sha256 === b.sha256;
      const distance = exact ? 0 : hamming(a.hash, b.hash);
      if (!exact && distance > NEAR_DUPLICATE_BITS) continue;
      const correlation = dot(a.thumbnail, b.thumbnail);
      if (!exact && correlation < NEAR_DUPLICATE_CORRELATION) continue;
      pairs.push({
        a: a.record.relPath,
        b: b.record.relPath,
        distance,
        correlation: Number(correlation.toFixed(4)),
        kind: exact ? 'exact' : 'near',
        where: a.split !== b.split ? 'train-test' : a.split === 'train' ? 'within-train' : 'within-test',
        labelConflict: a.record.label !== b.record.label,
      });
    }
  }
  return pairs.sort((p, q) => q.correlation - p.correlation);
}

/** A 3x3 grid of images (fewer cells when fewer images), each cell 256 px, as PNG. */
export async function writeGrid(paths: string[], cache: ImageCache, out: string, render?: (image: DecodedImage, index: number) => Uint8Array): Promise<void> {
  const cell = 256;
  const composites = await Promise.all(
    paths.slice(0, 9).map(async (path, index) => {
      const image = await cache.load(path, cell);
      const pixels = render ? render(image, index) : image.data;
      return {
        input: await sharp(pixels, { raw: { width: cell, height: cell, channels: 3 } }).png().toBuffer(),
        left: (index % 3) * (cell + 4),
        top: Math.floor(index / 3) * (cell + 4),
      };
    }),
  );
  await mkdir(join(out, '..'), { recursive: true });
  await sharp({ create: { width: cell * 3 + 8, height: cell * 3 + 8, channels: 3, background: '#ffffff' } })
    .composite(composites)
    .png()
    .toFile(out);
}
