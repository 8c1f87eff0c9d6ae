/**
 * Stochastic weight averaging (Izmailov et al., 2018) in its simplest form: the running mean of a model's weights
 * over the epochs it is given. The mean of the last epochs of a constant-rate phase sits nearer the middle of the
 * flat region the optimiser wanders in than any single epoch, which tends to generalise better; with 108
 * validation images, it also spares the choice of one epoch among noisy validation losses.
 */
import * as tf from '@tensorflow/tfjs-core';

export type NamedTensors = Map<string, tf.Tensor>;

export class WeightAverage {
  private sum: NamedTensors | undefined;
  private added = 0;

  get count(): number {
    return this.added;
  }

  /** Adds one set of weights (not kept: the caller still owns them). */
  add(weights: ReadonlyMap<string, tf.Tensor>): void {
    if (!this.sum) {
      this.sum = new Map([...weights].map(([key, w]) => [key, w.clone()]));
    } else {
      for (const [key, w] of weights) {
        const total = this.sum.get(key);
        if (!total) throw new Error(`weight average: '${key}' was not in the first set of weights`);
        this.sum.set(key, tf.add(total, w));
        total.dispose();
      }
    }
    this.added++;
  }

  /** The mean so far, as new tensors the caller owns. */
  mean(): NamedTensors {
    if (!this.sum) throw new Error('weight average: nothing was added');
    const n = this.added;
    return new Map([...this.sum].map(([key, total]) => [key, tf.div(total, n)]));
  }

  dispose(): void {
    tf.dispose([...(this.sum?.values() ?? [])]);
    this.sum = undefined;
    this.added = 0;
  }
}
