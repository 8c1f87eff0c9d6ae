// One tfjs-wasm backend per worker_thread (tfjs has no wasm threads in Node): builds the BatchNorm-folded
// graph once, then answers forward requests for chunks of the batch.
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { deserializeGraph } from '../cache.ts';
import { foldBatchNorm } from '../ir.ts';
import { buildTfjsLayersModel } from '../tfjs.ts';

export interface WorkerInit {
  graph: Uint8Array;
  wasmDir: string;
  /** Testing only: exit abruptly when asked for this chunk id the first time. */
  crashOnChunk?: number;
}

export interface ForwardRequest {
  id: number;
  data: Float32Array;
  n: number;
}

const init = workerData as WorkerInit;
setWasmPaths(init.wasmDir);
await tf.setBackend('wasm');
const graph = foldBatchNorm(deserializeGraph(init.graph));
const model = buildTfjsLayersModel(graph);
parentPort!.postMessage({ ready: true });
parentPort!.on('message', (request: ForwardRequest) => {
  if (request.id === init.crashOnChunk) process.exit(3);
  try {
    const output = tf.tidy(() => {
      const x = tf.tensor(request.data, [request.n, ...graph.inputShape]);
      return (model.predict(x) as tf.Tensor).dataSync() as Float32Array;
    });
    parentPort!.postMessage({ id: request.id, output }, [output.buffer as ArrayBuffer]);
  } catch (error) {
    parentPort!.postMessage({ id: request.id, error: (error as Error).message });
  }
});
