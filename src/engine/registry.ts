/**
 * Backbones the engine knows: the built-in TFLite MobileNets, EfficientNet-B0 built as Keras builds it with
 * weights from a Keras HDF5 file, and any tfjs layers model directory. Each entry says where the weights come
 * from, what input it takes, which layer gives the features, and where a trainable tail may start.
 */
import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type * as tfl from '@tensorflow/tfjs-layers';
import { SHARED_ROOT } from '../config/index.ts';
import { buildEfficientNetB0 } from './efficientnet/model.ts';

export const MOBILENET_DIR = join(SHARED_ROOT, 'models', 'mobilenet-tflite');

/** The file keras.applications downloads for EfficientNetB0(include_top=False, weights='imagenet'). */
export const EFFICIENTNET_B0_FILE = 'efficientnetb0_notop.h5';
/** Environment variable naming the EfficientNet-B0 weight file when --weights is not given. */
export const EFFICIENTNET_B0_ENV = 'COVID_CT_EFFICIENTNET_B0_WEIGHTS';

/**
 * Where an EfficientNet-B0 weight file is looked for when none is given: $COVID_CT_EFFICIENTNET_B0_WEIGHTS, then
 * ../shared/models/keras/, then Keras's own download cache ($KERAS_HOME or ~/.keras, models/).
 */
export function efficientNetB0WeightCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  const candidates: string[] = [];
  if (env[EFFICIENTNET_B0_ENV]) candidates.push(resolve(env[EFFICIENTNET_B0_ENV]));
  candidates.push(join(SHARED_ROOT, 'models', 'keras', EFFICIENTNET_B0_FILE));
  candidates.push(join(env.KERAS_HOME ? resolve(env.KERAS_HOME) : join(homedir(), '.keras'), 'models', EFFICIENTNET_B0_FILE));
  return candidates;
}

function defaultEfficientNetB0Weights(): string {
  const candidates = efficientNetB0WeightCandidates();
  return candidates.find((path) => existsSync(path)) ?? candidates[candidates.length - 1]!;
}

/** Builds a Keras-architecture backbone without weights; `includeTop` adds the ImageNet classifier. */
export type KerasBuilder = (options: { includeTop: boolean }) => tfl.LayersModel;

export interface BackboneSpec {
  name: string;
  format: 'tflite' | 'tfjs-layers' | 'keras-h5';
  /** The weights file (.tflite, model.json, or a Keras .h5 weight file). */
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
  /**
   * Keras-format backbones: builds the architecture (the model's layers are Keras's model.layers, so a number
   * given as a cut is a Keras layer index). The weights come from `source`.
   */
  build?: KerasBuilder;
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
  'efficientnet-b0': {
    name: 'efficientnet-b0',
    format: 'keras-h5',
    get source() {
      return defaultEfficientNetB0Weights();
    },
    description:
      'EfficientNet-B0 as keras.applications builds it (include_top=False, pooling=avg), weights from a Keras .h5 file ' +
      `(${EFFICIENTNET_B0_FILE}; not shipped, not checked against ImageNet here); 1280 features`,
    inputSize: 224,
    preprocessing: 'RGB 0-255 in; Rescaling(1/255) and Normalization inside the graph, as in Keras',
    featureLayer: 'avg_pool',
    classifierLayer: undefined,
    labels: undefined,
    unfreezePoints: ['top_conv', 'block7a', 'block6a', 'block5a', 'block4a'],
    build: ({ includeTop }) => buildEfficientNetB0(includeTop ? { includeTop: true } : { pooling: 'avg' }),
  },
};

export class BackboneError extends Error {
  override name = 'BackboneError';
}

export interface ResolveBackboneOptions {
  /** Feature layer of a tfjs layers model directory (required there; overrides a built-in's default). */
  featureLayer?: string;
  /** Keras .h5 weight file of a Keras-format backbone (efficientnet-b0); overrides the default location. */
  weights?: string;
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
  if (options.weights !== undefined && (typeof options.weights !== 'string' || options.weights === '')) {
    throw new BackboneError(`weights must be a .h5 file path, got ${JSON.stringify(options.weights)}`);
  }
  const builtin = BUILTIN_BACKBONES[name];
  if (builtin) {
    if (options.weights !== undefined && builtin.format !== 'keras-h5') {
      const keras = Object.values(BUILTIN_BACKBONES).filter((b) => b.format === 'keras-h5').map((b) => b.name);
      throw new BackboneError(`weights: backbone '${name}' has its own weights; --weights applies to Keras backbones only (${keras.join(', ')})`);
    }
    return {
      ...builtin,
      source: options.weights !== undefined ? resolve(options.weights) : builtin.source,
      ...(options.featureLayer ? { featureLayer: options.featureLayer } : {}),
    };
  }
  if (options.weights !== undefined) throw new BackboneError(`weights: --weights applies to Keras backbones only, not to '${name}'`);
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

/**
 * A cut (fine-tuning point) as a layer name: a whole number is an index into Keras's model.layers (e.g. 221 =
 * block7a_expand_conv in EfficientNetB0), accepted for Keras-format backbones; names and block prefixes pass.
 */
export function resolveCut(spec: BackboneSpec, cut: string): string {
  if (!/^\d+$/.test(cut)) return cut;
  if (!spec.build) {
    throw new BackboneError(`cut '${cut}': layer indices apply to Keras-format backbones only; give '${spec.name}' a layer name or block prefix (${spec.unfreezePoints.join(', ')})`);
  }
  const model = spec.build({ includeTop: false });
  try {
    const index = Number(cut);
    const layer = model.layers[index];
    if (!layer || index === 0) {
      throw new BackboneError(`cut '${cut}': '${spec.name}' has layers 1 to ${model.layers.length - 1} after its input (Keras's model.layers indices)`);
    }
    return layer.name;
  } finally {
    model.dispose();
  }
}
