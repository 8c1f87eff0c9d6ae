// Cached trunk activations and labels, kept as flat Float32Arrays so batches are cheap to gather and to post
// to worker threads.
export type FeatureSet = {
  /** Activations of every example, concatenated: examples x prod(featureShape). */
  features: Float32Array;
  /** Shape of one example's activation, e.g. [7, 7, 160]. */
  featureShape: number[];
  /** 0 or 1 per example. */
  labels: ArrayLike<number>;
};

export function exampleCount(data: FeatureSet): number {
  return data.labels.length;
}

export function validateFeatureSet(data: FeatureSet): void {
  if (!(data.features instanceof Float32Array)) throw new Error('features must be a Float32Array');
  if (!Array.isArray(data.featureShape) || data.featureShape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new Error(`featureShape must be positive integers, got ${JSON.stringify(data.featureShape)}`);
  }
  const count = data.labels?.length;
  if (!count) throw new Error('labels must be a non-empty array');
  const perExample = data.featureShape.reduce((a, b) => a * b, 1);
  if (data.features.length !== count * perExample) {
    throw new Error(`features has ${data.features.length} values; ${count} labels x featureShape ${JSON.stringify(data.featureShape)} needs ${count * perExample}`);
  }
  for (let i = 0; i < count; i++) {
    if (data.labels[i] !== 0 && data.labels[i] !== 1) throw new Error(`labels must be 0 or 1, labels[${i}] is ${data.labels[i]}`);
  }
}

/** Copies the examples at `indices` into one batch. */
export function gatherBatch(data: FeatureSet, indices: ArrayLike<number>): { features: Float32Array; labels: Float32Array } {
  const perExample = data.features.length / data.labels.length;
  const features = new Float32Array(indices.length * perExample);
  const labels = new Float32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const example = indices[i]!;
    features.set(data.features.subarray(example * perExample, (example + 1) * perExample), i * perExample);
    labels[i] = data.labels[example]!;
  }
  return { features, labels };
}
