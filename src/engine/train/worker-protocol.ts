// Messages between the trainer and its gradient workers.
export type WeightValues = { shape: number[]; values: Float32Array };

export type WorkerRequest =
  | { type: 'init'; topology: unknown; weights: WeightValues[] }
  | { type: 'step'; trainable: Float32Array[]; features: Float32Array; labels: Float32Array; featureShape: number[] };

export type WorkerReply =
  | { type: 'ready' }
  | { type: 'gradients'; loss: number; gradients: Float32Array[] }
  | { type: 'error'; message: string };
