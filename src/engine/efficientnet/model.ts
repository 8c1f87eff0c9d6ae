/**
 * EfficientNet-B0 as `keras.applications.EfficientNetB0` builds it (Keras 2.4-2.9, the releases whose layer list
 * puts block 7a at index 221): the same layers, names, order, output shapes and parameter counts, so a Keras
 * HDF5 weight file loads by layer name and a Keras layer index names the same layer here.
 *
 * Stem: Rescaling(1/255) -> Normalization -> ZeroPadding2D -> conv 3x3/2 -> BN -> swish. Then 16 MBConv blocks
 * (expand 1x1 conv, depthwise conv, squeeze-and-excitation, project 1x1 conv, and a residual add behind a
 * drop-connect Dropout with noise shape (None, 1, 1, 1) when the shape is kept), then top conv 1x1 -> BN -> swish.
 */
import * as tfl from '@tensorflow/tfjs-layers';
import type { SymbolicTensor } from '@tensorflow/tfjs-layers';
import { KerasNormalization } from './normalization.ts';

export class EfficientNetError extends Error {
  override name = 'EfficientNetError';
}

interface StageArgs {
  kernelSize: number;
  repeats: number;
  filtersIn: number;
  filtersOut: number;
  expandRatio: number;
  strides: number;
  seRatio: number;
}

/** The seven stages of B0 (width and depth coefficients 1.0, so no rounding changes them). */
export const B0_STAGES: readonly StageArgs[] = [
  { kernelSize: 3, repeats: 1, filtersIn: 32, filtersOut: 16, expandRatio: 1, strides: 1, seRatio: 0.25 },
  { kernelSize: 3, repeats: 2, filtersIn: 16, filtersOut: 24, expandRatio: 6, strides: 2, seRatio: 0.25 },
  { kernelSize: 5, repeats: 2, filtersIn: 24, filtersOut: 40, expandRatio: 6, strides: 2, seRatio: 0.25 },
  { kernelSize: 3, repeats: 3, filtersIn: 40, filtersOut: 80, expandRatio: 6, strides: 2, seRatio: 0.25 },
  { kernelSize: 5, repeats: 3, filtersIn: 80, filtersOut: 112, expandRatio: 6, strides: 1, seRatio: 0.25 },
  { kernelSize: 5, repeats: 4, filtersIn: 112, filtersOut: 192, expandRatio: 6, strides: 2, seRatio: 0.25 },
  { kernelSize: 3, repeats: 1, filtersIn: 192, filtersOut: 320, expandRatio: 6, strides: 1, seRatio: 0.25 },
];

/** Facts about Keras's model that the builder must reproduce (checked by the tests). */
export const KERAS_EFFICIENTNET_B0 = {
  paramsNoTop: 4_049_571,
  paramsWithTop: 5_330_571,
  /** Layers of include_top=False, the InputLayer included (Keras's model.layers). */
  layersNoTop: 237,
  /** Keras's model.layers index of the first layer of block 7a: the published fine-tuning point. */
  block7aIndex: 221,
  block7aLayer: 'block7a_expand_conv',
} as const;

export type Pooling = 'avg' | 'max' | 'none';
const POOLINGS: readonly Pooling[] = ['avg', 'max', 'none'];

export interface EfficientNetB0Options {
  /** With the ImageNet classifier (avg_pool, top_dropout, predictions); default false. */
  includeTop?: boolean;
  /** [H, W, 3]; default [224, 224, 3]; at least 32x32 as Keras requires. */
  inputShape?: [number, number, number];
  /** Pooling after top_activation when includeTop is false: 'none' (default, Keras's None), 'avg' or 'max'. */
  pooling?: Pooling;
  /** Classifier units with includeTop; default 1000. */
  classes?: number;
  /** Classifier activation with includeTop: 'softmax' (default) or 'linear' (logits). */
  classifierActivation?: 'softmax' | 'linear';
  /** Dropout before the classifier; default 0.2. */
  dropoutRate?: number;
  /** Drop-connect rate of the last block (block b drops rate * b / 16); default 0.2. */
  dropConnectRate?: number;
  /** Seed of the weight initializers and dropout masks; default unseeded. */
  seed?: number;
}

function check(condition: boolean, option: string, expected: string, value: unknown): void {
  if (!condition) throw new EfficientNetError(`efficientnet-b0: ${option} must be ${expected}, got ${JSON.stringify(value)}`);
}

function validate(options: EfficientNetB0Options): Required<Omit<EfficientNetB0Options, 'seed'>> & { seed: number | undefined } {
  const known = ['includeTop', 'inputShape', 'pooling', 'classes', 'classifierActivation', 'dropoutRate', 'dropConnectRate', 'seed'];
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) throw new EfficientNetError(`efficientnet-b0: unknown option '${key}'; valid options: ${known.join(', ')}`);
  }
  const resolved = {
    includeTop: options.includeTop ?? false,
    inputShape: options.inputShape ?? ([224, 224, 3] as [number, number, number]),
    pooling: options.pooling ?? 'none',
    classes: options.classes ?? 1000,
    classifierActivation: options.classifierActivation ?? 'softmax',
    dropoutRate: options.dropoutRate ?? 0.2,
    dropConnectRate: options.dropConnectRate ?? 0.2,
    seed: options.seed,
  };
  check(typeof resolved.includeTop === 'boolean', 'includeTop', 'true or false', options.includeTop);
  const shape = resolved.inputShape;
  check(
    Array.isArray(shape) && shape.length === 3 && Number.isInteger(shape[0]) && Number.isInteger(shape[1]) && shape[0] >= 32 && shape[1] >= 32 && shape[2] === 3,
    'inputShape', '[H, W, 3] with H, W integers >= 32', options.inputShape,
  );
  check(POOLINGS.includes(resolved.pooling), 'pooling', `one of ${POOLINGS.join(', ')}`, options.pooling);
  check(Number.isInteger(resolved.classes) && resolved.classes > 0, 'classes', 'a positive integer', options.classes);
  check(['softmax', 'linear'].includes(resolved.classifierActivation), 'classifierActivation', 'softmax or linear', options.classifierActivation);
  check(typeof resolved.dropoutRate === 'number' && resolved.dropoutRate >= 0 && resolved.dropoutRate < 1, 'dropoutRate', 'in [0, 1)', options.dropoutRate);
  check(typeof resolved.dropConnectRate === 'number' && resolved.dropConnectRate >= 0 && resolved.dropConnectRate < 1, 'dropConnectRate', 'in [0, 1)', options.dropConnectRate);
  if (resolved.seed !== undefined) check(Number.isInteger(resolved.seed), 'seed', 'an integer', options.seed);
  return resolved;
}

/**
 * Keras's imagenet_utils.correct_pad: the zero padding that makes a 'valid' strided convolution sample like TF's
 * 'same' one: k // 2 on each side, one less before when the input size is even.
 */
export function correctPad(height: number, width: number, kernelSize: number): [[number, number], [number, number]] {
  const half = Math.floor(kernelSize / 2);
  return [
    [half - (1 - (height % 2)), half],
    [half - (1 - (width % 2)), half],
  ];
}

/** Builds EfficientNet-B0 with freshly initialised weights (load Keras weights with loadKerasH5Weights). */
export function buildEfficientNetB0(options: EfficientNetB0Options = {}): tfl.LayersModel {
  const o = validate(options);
  let seedCounter = o.seed ?? 0;
  // Each initializer gets its own seed so a seeded model is reproducible without every kernel being identical.
  const nextSeed = (): number | undefined => (o.seed === undefined ? undefined : seedCounter++);
  const convInit = () => tfl.initializers.varianceScaling({ scale: 2.0, mode: 'fanOut', distribution: 'truncatedNormal', seed: nextSeed() });
  const denseInit = () => tfl.initializers.varianceScaling({ scale: 1 / 3, mode: 'fanOut', distribution: 'uniform', seed: nextSeed() });
  const spatial = (x: SymbolicTensor): [number, number] => [x.shape[1] as number, x.shape[2] as number];
  const apply = (layer: tfl.layers.Layer, x: SymbolicTensor | SymbolicTensor[]): SymbolicTensor => layer.apply(x) as SymbolicTensor;

  const input = tfl.input({ shape: o.inputShape, name: 'input_1', dtype: 'float32' });
  let x = apply(tfl.layers.rescaling({ scale: 1 / 255, name: 'rescaling' }), input);
  x = apply(new KerasNormalization({ axis: 3, name: 'normalization' }), x);
  x = apply(tfl.layers.zeroPadding2d({ padding: correctPad(...spatial(x), 3), name: 'stem_conv_pad' }), x);
  x = apply(tfl.layers.conv2d({ filters: 32, kernelSize: 3, strides: 2, padding: 'valid', useBias: false, kernelInitializer: convInit(), name: 'stem_conv' }), x);
  x = apply(tfl.layers.batchNormalization({ axis: 3, name: 'stem_bn' }), x);
  x = apply(tfl.layers.activation({ activation: 'swish', name: 'stem_activation' }), x);

  const totalBlocks = B0_STAGES.reduce((sum, stage) => sum + stage.repeats, 0);
  let blockIndex = 0;
  for (const [i, stage] of B0_STAGES.entries()) {
    for (let j = 0; j < stage.repeats; j++) {
      const filtersIn = j === 0 ? stage.filtersIn : stage.filtersOut;
      const strides = j === 0 ? stage.strides : 1;
      const name = `block${i + 1}${String.fromCharCode(97 + j)}_`;
      const dropRate = (o.dropConnectRate * blockIndex) / totalBlocks;
      x = mbConvBlock(x, { name, filtersIn, filtersOut: stage.filtersOut, kernelSize: stage.kernelSize, strides, expandRatio: stage.expandRatio, seRatio: stage.seRatio, dropRate, seed: o.seed === undefined ? undefined : o.seed + 1000 + blockIndex });
      blockIndex++;
    }
  }

  x = apply(tfl.layers.conv2d({ filters: 1280, kernelSize: 1, padding: 'same', useBias: false, kernelInitializer: convInit(), name: 'top_conv' }), x);
  x = apply(tfl.layers.batchNormalization({ axis: 3, name: 'top_bn' }), x);
  x = apply(tfl.layers.activation({ activation: 'swish', name: 'top_activation' }), x);
  if (o.includeTop) {
    x = apply(tfl.layers.globalAveragePooling2d({ name: 'avg_pool' }), x);
    if (o.dropoutRate > 0) x = apply(tfl.layers.dropout({ rate: o.dropoutRate, name: 'top_dropout', ...(o.seed === undefined ? {} : { seed: o.seed }) }), x);
    x = apply(tfl.layers.dense({ units: o.classes, activation: o.classifierActivation, kernelInitializer: denseInit(), name: 'predictions' }), x);
  } else if (o.pooling === 'avg') {
    x = apply(tfl.layers.globalAveragePooling2d({ name: 'avg_pool' }), x);
  } else if (o.pooling === 'max') {
    x = apply(tfl.layers.globalMaxPooling2d({ name: 'max_pool' }), x);
  }
  return tfl.model({ inputs: input, outputs: x, name: 'efficientnetb0' });

  function mbConvBlock(
    inputs: SymbolicTensor,
    b: { name: string; filtersIn: number; filtersOut: number; kernelSize: number; strides: number; expandRatio: number; seRatio: number; dropRate: number; seed: number | undefined },
  ): SymbolicTensor {
    const filters = b.filtersIn * b.expandRatio;
    let y = inputs;
    if (b.expandRatio !== 1) {
      y = apply(tfl.layers.conv2d({ filters, kernelSize: 1, padding: 'same', useBias: false, kernelInitializer: convInit(), name: `${b.name}expand_conv` }), y);
      y = apply(tfl.layers.batchNormalization({ axis: 3, name: `${b.name}expand_bn` }), y);
      y = apply(tfl.layers.activation({ activation: 'swish', name: `${b.name}expand_activation` }), y);
    }
    let padding: 'same' | 'valid' = 'same';
    if (b.strides === 2) {
      y = apply(tfl.layers.zeroPadding2d({ padding: correctPad(...spatial(y), b.kernelSize), name: `${b.name}dwconv_pad` }), y);
      padding = 'valid';
    }
    y = apply(tfl.layers.depthwiseConv2d({ kernelSize: b.kernelSize, strides: b.strides, padding, useBias: false, depthwiseInitializer: convInit(), name: `${b.name}dwconv` }), y);
    y = apply(tfl.layers.batchNormalization({ axis: 3, name: `${b.name}bn` }), y);
    y = apply(tfl.layers.activation({ activation: 'swish', name: `${b.name}activation` }), y);
    if (b.seRatio > 0 && b.seRatio <= 1) {
      const filtersSe = Math.max(1, Math.floor(b.filtersIn * b.seRatio));
      let se = apply(tfl.layers.globalAveragePooling2d({ name: `${b.name}se_squeeze` }), y);
      se = apply(tfl.layers.reshape({ targetShape: [1, 1, filters], name: `${b.name}se_reshape` }), se);
      se = apply(tfl.layers.conv2d({ filters: filtersSe, kernelSize: 1, padding: 'same', activation: 'swish', kernelInitializer: convInit(), name: `${b.name}se_reduce` }), se);
      se = apply(tfl.layers.conv2d({ filters, kernelSize: 1, padding: 'same', activation: 'sigmoid', kernelInitializer: convInit(), name: `${b.name}se_expand` }), se);
      y = apply(tfl.layers.multiply({ name: `${b.name}se_excite` }), [y, se]);
    }
    y = apply(tfl.layers.conv2d({ filters: b.filtersOut, kernelSize: 1, padding: 'same', useBias: false, kernelInitializer: convInit(), name: `${b.name}project_conv` }), y);
    y = apply(tfl.layers.batchNormalization({ axis: 3, name: `${b.name}project_bn` }), y);
    if (b.strides === 1 && b.filtersIn === b.filtersOut) {
      if (b.dropRate > 0) {
        // Drop-connect: one keep/drop draw per example (noise shape (None, 1, 1, 1)), active only in training.
        const noiseShape = [null, 1, 1, 1] as unknown as number[];
        y = apply(tfl.layers.dropout({ rate: b.dropRate, noiseShape, name: `${b.name}drop`, ...(b.seed === undefined ? {} : { seed: b.seed }) }), y);
      }
      y = apply(tfl.layers.add({ name: `${b.name}add` }), [y, inputs]);
    }
    return y;
  }
}
