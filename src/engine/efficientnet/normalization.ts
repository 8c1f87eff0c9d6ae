/**
 * Keras's `Normalization` preprocessing layer, which tfjs-layers lacks: y = (x - mean) / max(sqrt(variance), 1e-7)
 * along the last axis. It holds three non-trainable weights, as Keras does: mean [C], variance [C] and count []
 * (Keras stores count as int64; here it is float32, a number only kept so weight files round-trip).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { LayerVariable } from '@tensorflow/tfjs-layers';

/** Keras's backend.epsilon(): the floor of the standard deviation. */
const KERAS_EPSILON = 1e-7;

interface NormalizationArgs {
  name?: string;
  /** Channel axis; only the last (-1, or 3 for NHWC images) is supported. */
  axis?: number;
}

type Kwargs = Record<string, unknown>;
type LayerShape = Array<number | null>;

export class KerasNormalization extends tfl.layers.Layer {
  static className = 'Normalization';
  readonly axis: number;
  private mean: LayerVariable | undefined;
  private variance: LayerVariable | undefined;

  constructor(args: NormalizationArgs = {}) {
    super({ name: args.name, trainable: false });
    this.axis = args.axis ?? -1;
  }

  override build(inputShape: LayerShape | LayerShape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as LayerShape;
    const rank = shape.length;
    if (this.axis !== -1 && this.axis !== rank - 1) {
      throw new Error(`layer '${this.name}' (Normalization): axis ${this.axis}; only the last axis (-1 or ${rank - 1}) is supported`);
    }
    const channels = shape[rank - 1];
    if (typeof channels !== 'number') throw new Error(`layer '${this.name}' (Normalization): the channel dimension must be known`);
    this.mean = this.addWeight('mean', [channels], 'float32', tfl.initializers.zeros(), undefined, false);
    this.variance = this.addWeight('variance', [channels], 'float32', tfl.initializers.ones(), undefined, false);
    this.addWeight('count', [], 'float32', tfl.initializers.zeros(), undefined, false);
    this.built = true;
  }

  override computeOutputShape(inputShape: LayerShape | LayerShape[]): LayerShape | LayerShape[] {
    return inputShape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    void kwargs;
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0]! : inputs;
      const std = tf.maximum(tf.sqrt(this.variance!.read()), KERAS_EPSILON);
      return tf.div(tf.sub(x, this.mean!.read()), std);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), axis: this.axis };
  }
}

tf.serialization.registerClass(KerasNormalization);
