/**
 * Loading a list of images through the cache, with the failures listed (or fatal with `strict`),
 * and seeded, shuffled, memory-bounded batches for training.
 */
import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import type { CachedImage, ImageCache } from './cache.ts';
import type { ImageRecord } from './dataset.ts';
import { ImageError } from './errors.ts';
import { Rng } from './random.ts';

export interface LoadedImage extends CachedImage {
  record: ImageRecord;
}

export interface LoadResult {
  images: LoadedImage[];
  failures: ImageError[];
}

/** Runs `work` over `items` with at most `limit` in flight, keeping the input order in the results. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!, index);
    }
  });
  await Promise.all(runners);
  return results;
}

export interface LoadOptions {
  size: number;
  /** Stop at the first unreadable file instead of listing it and going on. */
  strict?: boolean;
  concurrency?: number;
}

export async function loadImages(records: readonly ImageRecord[], cache: ImageCache, options: LoadOptions): Promise<LoadResult> {
  const failures: ImageError[] = [];
  const loaded = await mapLimit(records, options.concurrency ?? availableParallelism() * 2, async (record) => {
    try {
      return { ...(await cache.load(record.path, options.size)), record };
    } catch (error) {
      const failure = error instanceof ImageError ? error : new ImageError(record.path, (error as Error).message);
      if (options.strict) throw failure;
      failures.push(failure);
      return null;
    }
  });
  return { images: loaded.filter((image): image is LoadedImage => image !== null), failures };
}

export interface Batch {
  /** N x size x size x 3, float32 pixel values 0-255. */
  images: Float32Array;
  labels: Float32Array;
  records: ImageRecord[];
  size: number;
}

export interface BatchOptions {
  batchSize: number;
  size: number;
  seed: number;
  /** The epoch number: the order is a function of (seed, epoch), so a resumed run sees the same batches. */
  epoch: number;
  shuffle?: boolean;
  /** Applied to each image before it enters the batch (augmentation), with a generator owned by this batch stream. */
  transform?: (image: CachedImage, rng: Rng) => Uint8Array;
  strict?: boolean;
}

/**
 * Batches loaded lazily through the cache: at most one batch of images is decoded and held at a time,
 * so memory stays bounded by the batch size, not the dataset size. Unreadable files are skipped (listed
 * through `onFailure`) unless `strict`.
 */
export async function* batches(
  records: readonly ImageRecord[],
  cache: ImageCache,
  options: BatchOptions,
  onFailure: (failure: ImageError) => void = () => {},
): AsyncGenerator<Batch> {
  const rng = new Rng(options.seed * 1_000_003 + options.epoch);
  const order = options.shuffle === false ? records.slice() : rng.shuffled(records);
  const pixels = options.size * options.size * 3;
  for (let start = 0; start < order.length; start += options.batchSize) {
    const chunk = order.slice(start, start + options.batchSize);
    const { images, failures } = await loadImages(chunk, cache, { size: options.size, strict: options.strict });
    failures.forEach(onFailure);
    if (images.length === 0) continue;
    const batch: Batch = {
      images: new Float32Array(images.length * pixels),
      labels: new Float32Array(images.length),
      records: images.map((image) => image.record),
      size: options.size,
    };
    images.forEach((image, i) => {
      batch.images.set(options.transform ? options.transform(image, rng) : image.data, i * pixels);
      batch.labels[i] = image.record.label;
    });
    yield batch;
  }
}

/** The batch as tfjs tensors: x [N, size, size, 3] float32 0-255, y [N, 1]. The caller disposes them. */
export function batchTensors(batch: Batch): { x: tf.Tensor4D; y: tf.Tensor2D } {
  const n = batch.labels.length;
  return { x: tf.tensor4d(batch.images, [n, batch.size, batch.size, 3]), y: tf.tensor2d(batch.labels, [n, 1]) };
}
