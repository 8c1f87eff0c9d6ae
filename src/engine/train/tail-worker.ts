// A gradient worker: its own wasm backend and copy of the tail; computes the gradients of the shard it is sent
// with the weights it is sent, so every thread works on the same weights.
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initWasmBackend, registerTrainingKernels } from '../kernels/index.ts';
import { localBatchGradients, trainableVariables } from './gradients.ts';
import type { BatchGradientFn } from './gradients.ts';
import type { WorkerReply, WorkerRequest } from './worker-protocol.ts';

if (!parentPort) throw new Error('tail-worker.ts must run in a worker thread');
const port = parentPort;

let model: tfl.LayersModel | undefined;
let variables: tf.Variable[] = [];
let gradientsOf: BatchGradientFn | undefined;
let featureShapeKey = '';

function reply(message: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

async function handle(request: WorkerRequest): Promise<void> {
  if (request.type === 'init') {
    registerTrainingKernels();
    await initWasmBackend();
    model = await tfl.models.modelFromJSON({ modelTopology: request.topology as never });
    model.setWeights(request.weights.map((w) => tf.tensor(w.values, w.shape)));
    variables = trainableVariables(model);
    reply({ type: 'ready' });
    return;
  }
  if (!model) throw new Error('step before init');
  if (JSON.stringify(request.featureShape) !== featureShapeKey) {
    featureShapeKey = JSON.stringify(request.featureShape);
    gradientsOf = localBatchGradients(model, request.featureShape);
  }
  request.trainable.forEach((values, i) => {
    const variable = variables[i]!;
    tf.tidy(() => variable.assign(tf.tensor(values, variable.shape)));
  });
  const { loss, gradients } = await gradientsOf!(request.features, request.labels);
  const arrays = gradients.map((g) => g.dataSync() as Float32Array);
  tf.dispose(gradients);
  reply({ type: 'gradients', loss, gradients: arrays }, arrays.map((a) => a.buffer as ArrayBuffer));
}

port.on('message', (request: WorkerRequest) => {
  handle(request).catch((error: unknown) => {
    reply({ type: 'error', message: error instanceof Error ? `${error.message}\n${error.stack}` : String(error) });
  });
});
