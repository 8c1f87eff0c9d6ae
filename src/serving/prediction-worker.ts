// The prediction worker's thread: loads the model directory as the server did and answers batches of decoded
// images with P(COVID). See PredictionWorker.
import { parentPort, workerData } from 'node:worker_threads';
import type { DecodedImage } from '../data/decode.ts';
import { loadModel } from '../inference/model.ts';
import type { LoadModelOptions } from '../inference/model.ts';

export type WorkerRequest = { id: number; images: DecodedImage[] };
export type WorkerReply = { ready: true } | { id: number; probabilities: Float32Array } | { id: number; error: string } | { startError: string };

if (!parentPort) throw new Error('prediction-worker.ts must run in a worker thread');
const port = parentPort;
const { dir, options } = workerData as { dir: string; options: LoadModelOptions };

try {
  const model = await loadModel(dir, options);
  port.on('message', async ({ id, images }: WorkerRequest) => {
    try {
      const probabilities = await model.predict(images);
      port.postMessage({ id, probabilities } satisfies WorkerReply, [probabilities.buffer as ArrayBuffer]);
    } catch (error) {
      port.postMessage({ id, error: (error as Error).message } satisfies WorkerReply);
    }
  });
  port.postMessage({ ready: true } satisfies WorkerReply);
} catch (error) {
  port.postMessage({ startError: (error as Error).message } satisfies WorkerReply);
}
