/**
 * Backbones the engine knows: the built-in TFLite MobileNets and any tfjs layers model directory. Each entry
 * says where the weights come from, what input it takes, which layer gives the features, and where a
 * trainable tail may start (unfreeze points).
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SHARED_ROOT } from '../config/index.ts';

export const MOBILENET_DIR = join(SHARED_ROOT, 'models', 'mobilenet-tflite');

export interface BackboneSpec {
  name: string;
  format: 'tflite' | 'tfjs-layers';
  /** The weights file (.tflite or model.json). */
  source: string;
  description: string;
  /** Square input side in pixels. */
  inputSize: number;
  /** How pixels reach the network; built-in backbones do it inside the graph, so callers pass raw RGB 0-255. */
  preprocessing: string;
  /** Layer whose output is the feature vector (flattened when spatial). */
  featureLayer: string;
  /** Output layer of the full ImageNet classifier, when the source has one. */
  classifierLayer: string | undefined;
  /** Label file for the classifier (line i = class i). */
  labels: string | undefined;
  /** Layer names or block prefixes where a trainable tail may start, deepest first. */
  unfreezePoints: string[];
}

export const BUILTIN_BACKBONES: Readonly<Record<string, BackboneSpec>> = {
  'mobilenet-v2': {
    name: 'mobilenet-v2',
    format: 'tflite',
    source: join(MOBILENET_DIR, 'mobilenet_v2_1.0_224_quant.tflite'),
    description: 'MobileNetV2 1.0 224, ImageNet, 8-bit TFLite dequantized to float32; 1280 features',
    inputSize: 224,
    preprocessing: 'RGB 0-255 in; (x - 128) / 128 inside the graph',
    featureLayer: 'global_pool',
    classifierLayer: 'predictions',
    labels: join(MOBILENET_DIR, 'imagenet_labels.txt'),
    unfreezePoints: ['conv_1x1', 'block_16', 'block_15', 'block_14', 'block_13'],
  },
  'mobilenet-v1': {
    name: 'mobilenet-v1',
    format: 'tflite',
    source: join(MOBILENET_DIR, 'mobilenet_v1_1.0_224_quant_embedding_extractor.tflite'),
    description: 'MobileNetV1 1.0 224 embedding extractor, ImageNet, 8-bit TFLite dequantized to float32; 1024 features',
    inputSize: 224,
    preprocessing: 'RGB 0-255 in; (x - 128) / 128 inside the graph',
    featureLayer: 'global_pool',
    classifierLayer: undefined,
    labels: undefined,
    unfreezePoints: ['block_13', 'block_12', 'block_11'],
  },
};

export class BackboneError extends Error {
  override name = 'BackboneError';
}

export interface ResolveBackboneOptions {
  /** Feature layer of a tfjs layers model directory (required there; overrides a built-in's default). */
  featureLayer?: string;
}

export function listBackbones(): BackboneSpec[] {
  return Object.values(BUILTIN_BACKBONES);
}

/**
 * A built-in backbone by name, or a tfjs layers model given as `path/model.json` or its directory.
 * Unknown names are answered with the valid ones.
 */
export function resolveBackbone(name: string, options: ResolveBackboneOptions = {}): BackboneSpec {
  if (typeof name !== 'string' || name.length === 0) throw new BackboneError('backbone: a name is required');
  if (options.featureLayer !== undefined && (typeof options.featureLayer !== 'string' || options.featureLayer === '')) {
    throw new BackboneError(`featureLayer must be a non-empty layer name, got ${JSON.stringify(options.featureLayer)}`);
  }
  const builtin = BUILTIN_BACKBONES[name];
  if (builtin) return options.featureLayer ? { ...builtin, featureLayer: options.featureLayer } : builtin;
  const looksLikePath = name.endsWith('.json') || name.includes('/') || name.includes('\\');
  if (!looksLikePath) {
    throw new BackboneError(
      `unknown backbone '${name}'; valid names: ${Object.keys(BUILTIN_BACKBONES).join(', ')}, or a tfjs layers model path/model.json`,
    );
  }
  let source = resolve(name);
  if (existsSync(source) && statSync(source).isDirectory()) source = join(source, 'model.json');
  if (!existsSync(source)) throw new BackboneError(`backbone '${name}': ${source} does not exist`);
  if (!options.featureLayer) {
    throw new BackboneError(`backbone '${name}': a tfjs layers model needs a feature layer (--feature-layer NAME)`);
  }
  return {
    name: source,
    format: 'tfjs-layers',
    source,
    description: `tfjs layers model ${source}`,
    inputSize: 0, // read from the model when it is loaded
    preprocessing: 'as the model expects (no preprocessing added)',
    featureLayer: options.featureLayer,
    classifierLayer: undefined,
    labels: undefined,
    unfreezePoints: [],
  };
}
