/**
 * The portable forward engine: tfjs-wasm with BatchNorm folded, one worker_thread per core. A batch is split
 * into one contiguous chunk per worker and the results are put back in input order. A worker that crashes is
 * replaced and its chunk retried once.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { serializeGraph } from '../cache.ts';
import { spawnTsWorker } from '../ts-worker.ts';
import type { Graph } from '../ir.ts';
import { inferShapes } from '../ir.ts';
import type { ForwardRequest, WorkerInit } from './worker.ts';

export class WasmEngineError extends Error {
  override name = 'WasmEngineError';
}

interface Reply {
  id: number;
  output?: Float32Array;
  error?: string;
}

class PoolWorker {
  private worker: Worker;
  readonly ready: Promise<void>;
  private waiting: { resolve: (reply: Reply) => void; reject: (error: Error) => void } | undefined;

  constructor(init: WorkerInit) {
    this.worker = spawnTsWorker(new URL('./worker.ts', import.meta.url), { workerData: init });
    this.ready = new Promise((resolve, reject) => {
      this.worker.once('message', () => resolve());
      this.worker.once('error', reject);
      this.worker.once('exit', (code) => reject(new WasmEngineError(`wasm worker exited with code ${code} while starting`)));
    });
    this.worker.on('message', (reply: Reply & { ready?: boolean }) => {
      if (reply.ready) return;
      const waiting = this.waiting;
      this.waiting = undefined;
      waiting?.resolve(reply);
    });
    const fail = (error: Error): void => {
      const waiting = this.waiting;
      this.waiting = undefined;
      waiting?.reject(error);
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new WasmEngineError(`wasm worker exited with code ${code}`)));
  }

  run(request: ForwardRequest): Promise<Reply> {
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.worker.postMessage(request);
    });
  }

  terminate(): Promise<number> {
    return this.worker.terminate();
  }
}

export interface WasmPoolOptions {
  workers: number;
  /** Testing only: the first attempt at this chunk id crashes its worker. */
  crashOnChunk?: number;
}

export class WasmForwardPool {
  private readonly workers: PoolWorker[];
  private readonly init: WorkerInit;
  private readonly imageSize: number;
  private readonly outputSize: number;
  private nextId = 0;
  /** Workers replaced after a crash since the pool started. */
  restarts = 0;

  private constructor(graph: Graph, options: WasmPoolOptions) {
    const require = createRequire(import.meta.url);
    const wasmDir = `${join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist')}/`;
    this.init = { graph: serializeGraph(graph), wasmDir, ...(options.crashOnChunk !== undefined ? { crashOnChunk: options.crashOnChunk } : {}) };
    const shapes = inferShapes(graph);
    this.imageSize = graph.inputShape.reduce((a, b) => a * b, 1);
    this.outputSize = shapes.get(graph.output)!.reduce((a, b) => a * b, 1);
    this.workers = Array.from({ length: options.workers }, () => new PoolWorker(this.init));
  }

  static async create(graph: Graph, options: WasmPoolOptions): Promise<WasmForwardPool> {
    const pool = new WasmForwardPool(graph, options);
    await Promise.all(pool.workers.map((w) => w.ready));
    return pool;
  }

  private async runChunk(slot: number, data: Float32Array, n: number): Promise<Float32Array> {
    const id = this.nextId++;
    for (let attempt = 0; ; attempt++) {
      try {
        const reply = await this.workers[slot]!.run({ id, data: data.slice(), n });
        if (reply.error !== undefined) throw new WasmEngineError(`wasm forward failed: ${reply.error}`);
        return reply.output!;
      } catch (error) {
        if (!(error instanceof WasmEngineError) || error.message.startsWith('wasm forward failed') || attempt > 0) throw error;
        // The worker died: replace it, and retry this chunk once (a retried chunk never re-triggers a test crash).
        const { crashOnChunk: _ignored, ...init } = this.init;
        this.workers[slot] = new PoolWorker(init);
        this.restarts++;
        await this.workers[slot]!.ready;
      }
    }
  }

  /** n images NHWC -> n * outputSize values, in input order. */
  async forward(data: Float32Array, n: number): Promise<Float32Array> {
    const perWorker = Math.ceil(n / this.workers.length);
    const chunks: Array<Promise<Float32Array>> = [];
    for (let slot = 0; slot * perWorker < n; slot++) {
      const start = slot * perWorker;
      const count = Math.min(perWorker, n - start);
      chunks.push(this.runChunk(slot, data.subarray(start * this.imageSize, (start + count) * this.imageSize), count));
    }
    const out = new Float32Array(n * this.outputSize);
    (await Promise.all(chunks)).forEach((chunk, slot) => out.set(chunk, slot * perWorker * this.outputSize));
    return out;
  }

  async dispose(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
