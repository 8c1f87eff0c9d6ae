// The layer list of keras.applications.EfficientNetB0 (Keras 2.4-2.9), derived by hand from the Keras
// architecture definition (efficientnet.py: DEFAULT_BLOCKS_ARGS, block(), the stem and top) with plain arithmetic,
// independently of src/engine/efficientnet. Each row: [name, Keras layer class, output shape without batch, params].

export type KerasRow = [name: string, type: string, shape: number[], params: number];

interface Stage {
  k: number;
  repeats: number;
  fin: number;
  fout: number;
  expand: number;
  stride: number;
}

// DEFAULT_BLOCKS_ARGS; se_ratio is 0.25 and id_skip true everywhere; B0 scales neither width nor depth.
const STAGES: Stage[] = [
  { k: 3, repeats: 1, fin: 32, fout: 16, expand: 1, stride: 1 },
  { k: 3, repeats: 2, fin: 16, fout: 24, expand: 6, stride: 2 },
  { k: 5, repeats: 2, fin: 24, fout: 40, expand: 6, stride: 2 },
  { k: 3, repeats: 3, fin: 40, fout: 80, expand: 6, stride: 2 },
  { k: 5, repeats: 3, fin: 80, fout: 112, expand: 6, stride: 1 },
  { k: 5, repeats: 4, fin: 112, fout: 192, expand: 6, stride: 2 },
  { k: 3, repeats: 1, fin: 192, fout: 320, expand: 6, stride: 1 },
];

/** BatchNormalization: gamma, beta, moving mean, moving variance. */
const bn = (c: number): number => 4 * c;

export function kerasEfficientNetB0Layers(includeTop: boolean, size = 224): KerasRow[] {
  const rows: KerasRow[] = [];
  let h = size;
  let c = 3;
  rows.push(['input_1', 'InputLayer', [h, h, 3], 0]);
  rows.push(['rescaling', 'Rescaling', [h, h, 3], 0]);
  rows.push(['normalization', 'Normalization', [h, h, 3], 3 + 3 + 1]); // mean, variance, count
  // correct_pad(224, 3): ((0, 1), (0, 1)) -> 225
  rows.push(['stem_conv_pad', 'ZeroPadding2D', [h + 1, h + 1, 3], 0]);
  h = Math.floor((h + 1 - 3) / 2) + 1;
  rows.push(['stem_conv', 'Conv2D', [h, h, 32], 3 * 3 * 3 * 32]);
  rows.push(['stem_bn', 'BatchNormalization', [h, h, 32], bn(32)]);
  rows.push(['stem_activation', 'Activation', [h, h, 32], 0]);
  c = 32;
  for (const [i, stage] of STAGES.entries()) {
    for (let j = 0; j < stage.repeats; j++) {
      const p = `block${i + 1}${'abcd'[j]}_`;
      const fin = j === 0 ? stage.fin : stage.fout;
      const stride = j === 0 ? stage.stride : 1;
      const filters = fin * stage.expand;
      if (stage.expand !== 1) {
        rows.push([`${p}expand_conv`, 'Conv2D', [h, h, filters], fin * filters]);
        rows.push([`${p}expand_bn`, 'BatchNormalization', [h, h, filters], bn(filters)]);
        rows.push([`${p}expand_activation`, 'Activation', [h, h, filters], 0]);
      }
      if (stride === 2) {
        // correct_pad: k // 2 after, one less before when the size is even.
        const padded = h + (stage.k >> 1) + ((stage.k >> 1) - (1 - (h % 2)));
        rows.push([`${p}dwconv_pad`, 'ZeroPadding2D', [padded, padded, filters], 0]);
        h = Math.floor((padded - stage.k) / 2) + 1;
      }
      rows.push([`${p}dwconv`, 'DepthwiseConv2D', [h, h, filters], stage.k * stage.k * filters]);
      rows.push([`${p}bn`, 'BatchNormalization', [h, h, filters], bn(filters)]);
      rows.push([`${p}activation`, 'Activation', [h, h, filters], 0]);
      const se = Math.max(1, Math.floor(fin * 0.25));
      rows.push([`${p}se_squeeze`, 'GlobalAveragePooling2D', [filters], 0]);
      rows.push([`${p}se_reshape`, 'Reshape', [1, 1, filters], 0]);
      rows.push([`${p}se_reduce`, 'Conv2D', [1, 1, se], filters * se + se]);
      rows.push([`${p}se_expand`, 'Conv2D', [1, 1, filters], se * filters + filters]);
      rows.push([`${p}se_excite`, 'Multiply', [h, h, filters], 0]);
      rows.push([`${p}project_conv`, 'Conv2D', [h, h, stage.fout], filters * stage.fout]);
      rows.push([`${p}project_bn`, 'BatchNormalization', [h, h, stage.fout], bn(stage.fout)]);
      if (stride === 1 && fin === stage.fout) {
        rows.push([`${p}drop`, 'Dropout', [h, h, stage.fout], 0]);
        rows.push([`${p}add`, 'Add', [h, h, stage.fout], 0]);
      }
      c = stage.fout;
    }
  }
  rows.push(['top_conv', 'Conv2D', [h, h, 1280], c * 1280]);
  rows.push(['top_bn', 'BatchNormalization', [h, h, 1280], bn(1280)]);
  rows.push(['top_activation', 'Activation', [h, h, 1280], 0]);
  if (includeTop) {
    rows.push(['avg_pool', 'GlobalAveragePooling2D', [1280], 0]);
    rows.push(['top_dropout', 'Dropout', [1280], 0]);
    rows.push(['predictions', 'Dense', [1000], 1280 * 1000 + 1000]);
  }
  return rows;
}
