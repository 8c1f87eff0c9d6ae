// Validation of the tail trainer's options: every bad value is an error that names the option.
export type TailTrainingOptions = {
  /** Passes over the training set. */
  epochs: number;
  /** Examples per optimizer step (the last batch of an epoch may be smaller). */
  batchSize: number;
  /** Adam learning rate. */
  learningRate: number;
  /** Seed of the per-epoch shuffling. */
  seed: number;
  /** worker_threads sharing each batch (data-parallel); 1 = this thread only. */
  workers?: number;
  /** Called after each epoch with the mean training loss; may be async. */
  onEpochEnd?: (epoch: number, logs: { loss: number }) => void | Promise<void>;
};

export type ValidatedOptions = Required<Omit<TailTrainingOptions, 'onEpochEnd'>> & Pick<TailTrainingOptions, 'onEpochEnd'>;

function positiveInteger(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new Error(`${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

export function validateOptions(options: TailTrainingOptions): ValidatedOptions {
  if (options === null || typeof options !== 'object') throw new Error('options must be an object');
  const { learningRate, seed, onEpochEnd } = options;
  if (typeof learningRate !== 'number' || !Number.isFinite(learningRate) || learningRate <= 0) {
    throw new Error(`learningRate must be a positive finite number, got ${String(learningRate)}`);
  }
  if (typeof seed !== 'number' || !Number.isInteger(seed)) throw new Error(`seed must be an integer, got ${String(seed)}`);
  if (onEpochEnd !== undefined && typeof onEpochEnd !== 'function') throw new Error('onEpochEnd must be a function');
  return {
    epochs: positiveInteger(options.epochs, 'epochs'),
    batchSize: positiveInteger(options.batchSize, 'batchSize'),
    learningRate,
    seed,
    workers: positiveInteger(options.workers ?? 1, 'workers'),
    onEpochEnd,
  };
}
