/**
 * The backbone check: classify the sample photos shipped with the MobileNets using the full ImageNet
 * classifier and compare each top-1 with the class verified by two independent implementations (SOURCE.md).
 */
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { decodeImage } from '../data/decode.ts';
import { loadBackbone } from './backbone.ts';
import { BackboneError, MOBILENET_DIR, resolveBackbone } from './registry.ts';

/** Sample photo -> expected top-1 label (text before the label's first comma). */
export const SAMPLE_TOP1: Readonly<Record<string, string>> = {
  'grace_hopper.bmp': 'military uniform',
  'cat.bmp': 'Egyptian cat',
  'bird.bmp': 'chickadee',
  'dragonfly.bmp': 'dragonfly',
};

export interface Prediction {
  index: number;
  label: string;
  score: number;
}

export interface ImageCheck {
  file: string;
  expected: string;
  top5: Prediction[];
  ok: boolean;
}

export interface BackboneCheckResult {
  backbone: string;
  images: ImageCheck[];
  ok: boolean;
}

export function shortLabel(label: string): string {
  return label.split(',')[0]!.trim();
}

export function topK(scores: Float32Array, k: number): number[] {
  return [...scores.keys()].sort((a, b) => scores[b]! - scores[a]!).slice(0, k);
}

export interface BackboneCheckOptions {
  /** Folder with the sample photos; default the MobileNet samples folder. */
  samplesDir?: string;
  cacheDir?: string;
}

export async function runBackboneCheck(name = 'mobilenet-v2', options: BackboneCheckOptions = {}): Promise<BackboneCheckResult> {
  const spec = resolveBackbone(name);
  if (!spec.classifierLayer || !spec.labels) {
    throw new BackboneError(`backbone '${spec.name}' has no ImageNet classifier to check; use mobilenet-v2`);
  }
  const labels = readFileSync(spec.labels, 'utf8').split(/\r?\n/);
  const samplesDir = options.samplesDir ?? join(MOBILENET_DIR, 'samples');
  const backbone = await loadBackbone(name, { head: 'classifier', ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}) });
  try {
    const files = Object.keys(SAMPLE_TOP1).map((file) => join(samplesDir, file));
    const size = backbone.inputSize;
    const batch = new Float32Array(files.length * size * size * 3);
    for (const [i, file] of files.entries()) {
      const image = await decodeImage(file, { size });
      batch.set(image.data, i * size * size * 3);
    }
    const scores = await backbone.forward(batch, files.length);
    const classes = backbone.outputSize;
    const images = files.map((file, i): ImageCheck => {
      const row = scores.subarray(i * classes, (i + 1) * classes);
      const top5 = topK(row, 5).map((index) => ({ index, label: labels[index] ?? `class ${index}`, score: row[index]! }));
      const expected = SAMPLE_TOP1[basename(file)]!;
      return { file, expected, top5, ok: shortLabel(top5[0]!.label) === expected };
    });
    return { backbone: spec.name, images, ok: images.every((image) => image.ok) };
  } finally {
    await backbone.dispose();
  }
}
