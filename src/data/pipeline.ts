/**
 * One image pipeline for training and inference, in MONAI's spirit: small steps composed in a fixed order.
 *  - `prepare` (deterministic, every image, training and inference alike): lung crop, grayscale, then intensity
 *    normalisation;
 *  - `trainingView` (random, training views only): prepare, then JPEG re-encoding, then the five augmentations,
 *    every draw from the generator passed in.
 * Which steps run is the config's `preprocess` section, saved with each model so inference repeats it.
 */
import type { AugmentConfig, PreprocessConfig } from '../config/index.ts';
import { augmenter } from './augment.ts';
import type { DecodedImage } from './decode.ts';
import { normalizeIntensity } from './preprocess/intensity.ts';
import { jpegReencode } from './preprocess/jpeg.ts';
import { lungCrop } from './preprocess/lungs.ts';
import { toGrayscale } from './preprocess/grayscale.ts';
import type { Rng } from './random.ts';

export interface ImagePipeline {
  prepare(image: DecodedImage, onWarning?: (warning: string) => void): DecodedImage;
  /** The random steps on an already prepared image (so a training image is prepared once for all its views). */
  randomView(prepared: DecodedImage, rng: Rng): Promise<Uint8Array>;
  trainingView(image: DecodedImage, rng: Rng): Promise<Uint8Array>;
}

export function imagePipeline(preprocess: PreprocessConfig, augment?: AugmentConfig): ImagePipeline {
  const augmentStep = augment ? augmenter(augment) : undefined;
  const prepare = (image: DecodedImage, onWarning?: (warning: string) => void): DecodedImage => {
    let out = image;
    if (preprocess.lungCrop) {
      const crop = lungCrop(out, { margin: preprocess.lungCropMargin });
      if (crop.warning) onWarning?.(crop.warning);
      out = crop.image;
    }
    if (preprocess.grayscale) out = toGrayscale(out);
    // Model cards written before the option existed have no intensity: none.
    out = normalizeIntensity(out, preprocess.intensity ?? 'none');
    return out;
  };
  const randomView = async (prepared: DecodedImage, rng: Rng): Promise<Uint8Array> => {
    let out = prepared;
    if (preprocess.jpegReencode) {
      const [minQuality, maxQuality] = preprocess.jpegQuality;
      out = await jpegReencode(out, rng, { minQuality, maxQuality });
    }
    return augmentStep ? augmentStep(out, rng) : out.data;
  };
  return { prepare, randomView, trainingView: (image, rng) => randomView(prepare(image), rng) };
}
