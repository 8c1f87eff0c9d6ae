/** The data stage's public surface: datasets, decoding, the cache, splits, augmentation, batches, inspection. */
export { ImageError, DatasetError } from './errors.ts';
export { decodeImage, decodeBuffer, probeImage, sniffFormat, readImageFile } from './decode.ts';
export type { DecodedImage, ImageInfo, ImageFormat, DecodeLimits } from './decode.ts';
export { ImageCache } from './cache.ts';
export type { CachedImage } from './cache.ts';
export { datasetPath, holdsClassFolders, listImages, listSplit, readMetadata, patientIdOf } from './dataset.ts';
export type { ImageRecord, MetadataRow, SplitFolder } from './dataset.ts';
export { makeSplit, verifyManifest, readGroupColumn, DEFAULT_GROUP_COLUMN } from './split.ts';
export type { SplitManifest, SplitEntry } from './split.ts';
export { sampleAugment, applyAugment, augmenter, IDENTITY } from './augment.ts';
export type { AugmentParams } from './augment.ts';
export { loadImages, batches, batchTensors, mapLimit } from './loader.ts';
export type { Batch, LoadedImage } from './loader.ts';
export { inspectDataset, differenceHash, writeGrid, NEAR_DUPLICATE_BITS, NEAR_DUPLICATE_CORRELATION, normalisedThumbnail, imageFacts, quartiles } from './inspect.ts';
export type { InspectReport, ClassSummary, DuplicatePair, ImageFacts, Quartiles } from './inspect.ts';
export { Rng } from './random.ts';
