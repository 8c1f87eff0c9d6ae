/**
 * One model, many requests: model work runs one job at a time (ONNX Runtime and the tfjs tail share the CPU
 * anyway), and plain predictions that arrive while a job runs are gathered into the next batch, so N waiting
 * requests cost one forward pass of N images instead of N passes.
 */
import type { DecodedImage } from '../data/decode.ts';

type PredictFn = (images: DecodedImage[]) => Promise<Float32Array>;

interface Waiting {
  images: DecodedImage[];
  resolve(probabilities: Float32Array): void;
  reject(error: unknown): void;
}

export class ModelRunner {
  private readonly waiting: Waiting[] = [];
  private tail: Promise<unknown> = Promise.resolve();
  private scheduled = false;

  constructor(
    private readonly predictBatch: PredictFn,
    private readonly maxBatch: number,
  ) {
    if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new RangeError(`maxBatch must be a positive integer, got ${maxBatch}`);
  }

  /** Runs `job` alone: after every job queued before it, before every job queued after it. */
  exclusive<T>(job: () => Promise<T>): Promise<T> {
    const run = this.tail.then(job, job);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** P(COVID) of the images, batched with other waiting requests. */
  predict = (images: DecodedImage[]): Promise<Float32Array> =>
    new Promise((resolve, reject) => {
      this.waiting.push({ images, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        void this.exclusive(() => this.drain());
      }
    });

  /** Runs one batch; further waiting requests get a new job, so exclusive jobs queued meanwhile take their turn. */
  private async drain(): Promise<void> {
    const batch: Waiting[] = [];
    let count = 0;
    while (this.waiting.length > 0 && (batch.length === 0 || count + this.waiting[0]!.images.length <= this.maxBatch)) {
      const next = this.waiting.shift()!;
      batch.push(next);
      count += next.images.length;
    }
    try {
      const probabilities = await this.predictBatch(batch.flatMap((w) => w.images));
      let offset = 0;
      for (const w of batch) {
        w.resolve(probabilities.slice(offset, offset + w.images.length));
        offset += w.images.length;
      }
    } catch (error) {
      for (const w of batch) w.reject(error);
    } finally {
      if (this.waiting.length > 0) void this.exclusive(() => this.drain());
      else this.scheduled = false;
    }
  }
}
