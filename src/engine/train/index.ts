export { trainTail } from './trainer.ts';
export type { TailTrainingResult } from './trainer.ts';
export type { BatchGradientFn } from './gradients.ts';
export type { TailTrainingOptions } from './options.ts';
export type { FeatureSet } from './dataset.ts';
export { localBatchGradients, tailGradients, tailLogits, trainableVariables, validateTailModel } from './gradients.ts';
export { runTail, runTailBatched } from './tail-graph.ts';
export type { RunTailOptions } from './tail-graph.ts';
export { TailWorkerPool } from './parallel.ts';
