// Data-parallel tail training: each batch is split between this thread and worker threads (one wasm backend
// each, since tfjs-wasm gets no threads in Node); the shard gradients are averaged, weighted by shard size,
// and this thread's optimizer applies them, then sends the new weights with the next batch.
import type { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { spawnTsWorker } from '../ts-worker.ts';
import type * as tfl from '@tensorflow/tfjs-layers';
import { localBatchGradients, trainableVariables } from './gradients.ts';
import type { BatchGradientFn } from './gradients.ts';
import type { WorkerReply, WorkerRequest } from './worker-protocol.ts';

class GradientWorker {
  private pending: { resolve: (reply: WorkerReply) => void; reject: (error: Error) => void } | undefined;

  constructor(private readonly worker: Worker) {
    worker.on('message', (reply: WorkerReply) => this.settle(reply));
    worker.on('error', (error) => this.fail(error));
    worker.on('exit', (code) => this.fail(new Error(`tail gradient worker exited with code ${code}`)));
  }

  static spawn(): GradientWorker {
    return new GradientWorker(spawnTsWorker(new URL('./tail-worker.ts', import.meta.url)));
  }

  request(message: WorkerRequest, transfer: ArrayBuffer[] = []): Promise<WorkerReply> {
    if (this.pending) throw new Error('a tail gradient worker got a request while busy');
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.worker.postMessage(message, transfer);
    });
  }

  private settle(reply: WorkerReply): void {
    const pending = this.pending;
    this.pending = undefined;
    if (reply.type === 'error') pending?.reject(new Error(`tail gradient worker: ${reply.message}`));
    else pending?.resolve(reply);
  }

  private fail(error: Error): void {
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(error);
  }

  async terminate(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}

export class TailWorkerPool {
  private constructor(private readonly workers: GradientWorker[]) {}

  /** Starts `count` workers, each with a copy of `model` (topology and current weights). */
  static async create(model: tfl.LayersModel, count: number): Promise<TailWorkerPool> {
    const topology = model.toJSON(null, false);
    const weights = model.getWeights().map((w) => ({ shape: w.shape, values: w.dataSync() as Float32Array }));
    const workers = Array.from({ length: count }, () => GradientWorker.spawn());
    const pool = new TailWorkerPool(workers);
    try {
      await Promise.all(workers.map((w) => w.request({ type: 'init', topology, weights })));
    } catch (error) {
      await pool.terminate();
      throw error;
    }
    return pool;
  }

  get size(): number {
    return this.workers.length;
  }

  /** Gradients of a batch shared between this thread (first shard) and the workers. */
  batchGradients(model: tfl.LayersModel, featureShape: number[]): BatchGradientFn {
    const local = localBatchGradients(model, featureShape);
    const variables = trainableVariables(model);
    const perExample = featureShape.reduce((a, b) => a * b, 1);
    return async (features, labels) => {
      const total = labels.length;
      const threads = Math.min(this.workers.length + 1, total);
      const bounds = Array.from({ length: threads + 1 }, (_, k) => Math.round((k * total) / threads));
      const trainable = threads > 1 ? variables.map((v) => v.dataSync() as Float32Array) : [];
      const remote = this.workers.slice(0, threads - 1).map((worker, k) => {
        const [from, to] = [bounds[k + 1]!, bounds[k + 2]!];
        return worker.request({
          type: 'step', trainable, featureShape,
          features: features.slice(from * perExample, to * perExample), labels: labels.slice(from, to),
        });
      });
      const mine = await local(features.subarray(0, bounds[1]! * perExample), labels.subarray(0, bounds[1]!));
      if (remote.length === 0) return mine;
      const replies = await Promise.all(remote);
      const weightOf = (k: number): number => (bounds[k + 1]! - bounds[k]!) / total;
      let loss = mine.loss * weightOf(0);
      const sums = mine.gradients.map((g) => {
        const values = g.dataSync() as Float32Array;
        const scaled = new Float32Array(values.length);
        for (let i = 0; i < values.length; i++) scaled[i] = values[i]! * weightOf(0);
        return scaled;
      });
      replies.forEach((reply, k) => {
        if (reply.type !== 'gradients') throw new Error(`unexpected reply ${reply.type} from a tail gradient worker`);
        loss += reply.loss * weightOf(k + 1);
        reply.gradients.forEach((values, v) => {
          const sum = sums[v]!;
          for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! + values[i]! * weightOf(k + 1);
        });
      });
      const shapes = mine.gradients.map((g) => g.shape);
      tf.dispose(mine.gradients);
      return { loss, gradients: sums.map((values, v) => tf.tensor(values, shapes[v])) };
    };
  }

  async terminate(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
