/**
 * Plain predictions on a worker thread. onnxruntime-node runs a session synchronously on the calling thread, so
 * on the event loop every batch would hold up uploads, decoding and health checks for its whole duration; in a
 * worker the server keeps taking and decoding requests while the model works (4 clients: p95 about a fifth lower).
 * The worker loads the same model directory with the same options; Grad-CAM stays on the server's own copy.
 */
import type { Worker } from 'node:worker_threads';
import type { DecodedImage } from '../data/decode.ts';
import { spawnTsWorker } from '../engine/ts-worker.ts';
import type { LoadedModel } from '../inference/model.ts';
import type { WorkerReply, WorkerRequest } from './prediction-worker.ts';

export class PredictionWorker {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve(p: Float32Array): void; reject(error: Error): void }>();
  private failure: Error | undefined;

  /** The worker has stopped (crashed, or closed): its pending and later predictions are rejected. */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  private constructor(private readonly worker: Worker) {
    worker.on('message', (reply: WorkerReply) => {
      if (!('id' in reply)) return;
      const waiting = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if ('error' in reply) waiting?.reject(new Error(`prediction worker: ${reply.error}`));
      else waiting?.resolve(reply.probabilities);
    });
    const fail = (error: Error) => {
      this.failure = error;
      for (const waiting of this.pending.values()) waiting.reject(error);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`prediction worker exited with code ${code}`)));
  }

  /** Starts a worker holding `model` (loaded again from its directory); resolves once it is ready. */
  static async start(model: Pick<LoadedModel, 'dir' | 'loadOptions'>): Promise<PredictionWorker> {
    const worker = spawnTsWorker(new URL('./prediction-worker.ts', import.meta.url), { workerData: { dir: model.dir, options: model.loadOptions } });
    await new Promise<void>((resolve, reject) => {
      const onMessage = (reply: WorkerReply) => {
        if ('startError' in reply) reject(new Error(`prediction worker could not load ${model.dir}: ${reply.startError}`));
        else if ('ready' in reply) resolve();
        else return;
        worker.off('message', onMessage);
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`prediction worker exited with code ${code} while starting`)));
    }).catch(async (error) => {
      await worker.terminate();
      throw error;
    });
    return new PredictionWorker(worker);
  }

  /** P(COVID) of each image, as the model's own predict. */
  predict = (images: DecodedImage[]): Promise<Float32Array> =>
    new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, images } satisfies WorkerRequest);
    });

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
