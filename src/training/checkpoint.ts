/**
 * Training checkpoints: named float32 tensors in one binary file with a JSON index (weights, the best weights
 * so far, Adam's moments), and the position in the schedule, written after every epoch so `train --resume`
 * continues where a stopped run left off. Files are written then renamed, so a stop mid-write loses nothing.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { EpochRecord } from '../evaluation/plots.ts';

export interface SchedulePosition {
  stage: number;
  round: number;
  phase: 1 | 2;
  /** Epochs of this phase already done. */
  epoch: number;
}

export const samePosition = (a: SchedulePosition, b: SchedulePosition): boolean => a.stage === b.stage && a.round === b.round && a.phase === b.phase && a.epoch === b.epoch;

export interface CheckpointState {
  position: SchedulePosition;
  /** Epochs done in this stage (selects the view of the next epoch). */
  stageEpochs: number;
  history: EpochRecord[];
  bestLoss: number | null;
  /** Where the best weights were taken (absent in checkpoints written before it was recorded, and for weight averages). */
  bestPosition?: SchedulePosition;
  /** Validation probabilities of the best weights (for the threshold). */
  bestValProbabilities: number[];
}

function writeAtomic(path: string, data: string | Uint8Array): void {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, data);
  renameSync(temporary, path);
}

export function saveTensors(path: string, tensors: ReadonlyMap<string, tf.Tensor>): void {
  const index: Array<{ name: string; shape: number[]; dtype: tf.DataType; offset: number; length: number }> = [];
  const parts: Buffer[] = [];
  let offset = 0;
  for (const [name, tensor] of tensors) {
    // Stored as float32 whatever the dtype (Adam's iteration count is int32), cast back on loading.
    const values = Float32Array.from(tensor.dataSync() as ArrayLike<number>);
    index.push({ name, shape: tensor.shape, dtype: tensor.dtype, offset, length: values.length });
    parts.push(Buffer.from(values.buffer, values.byteOffset, values.byteLength));
    offset += values.length;
  }
  writeAtomic(`${path}.bin`, Buffer.concat(parts));
  writeAtomic(`${path}.json`, JSON.stringify(index));
}

export function loadTensors(path: string): Map<string, tf.Tensor> {
  const index = JSON.parse(readFileSync(`${path}.json`, 'utf8')) as Array<{ name: string; shape: number[]; dtype: tf.DataType; offset: number; length: number }>;
  const bytes = readFileSync(`${path}.bin`);
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  return new Map(index.map((e) => [e.name, tf.tensor(all.slice(e.offset, e.offset + e.length), e.shape, e.dtype)]));
}

export class Checkpoint {
  readonly dir: string;

  constructor(modelDir: string, name = 'checkpoint') {
    this.dir = join(modelDir, name);
  }

  /**
   * The weights a run's stage `stage` (0-based) ended with, the next stage's start: saved when a stage that is not
   * the last finishes, so a refit can start its last stage from them instead of training the earlier ones again.
   */
  static stageEnd(modelDir: string, stage: number): Checkpoint {
    return new Checkpoint(modelDir, `stage-${stage + 1}-end`);
  }

  exists(): boolean {
    return existsSync(join(this.dir, 'state.json'));
  }

  save(state: CheckpointState, tensors: { weights: ReadonlyMap<string, tf.Tensor>; best: ReadonlyMap<string, tf.Tensor> | undefined; optimizer: ReadonlyMap<string, tf.Tensor> }): void {
    mkdirSync(this.dir, { recursive: true });
    saveTensors(join(this.dir, 'weights'), tensors.weights);
    if (tensors.best) saveTensors(join(this.dir, 'best'), tensors.best);
    saveTensors(join(this.dir, 'optimizer'), tensors.optimizer);
    // The state last: a checkpoint counts only once everything it names is on disk.
    writeAtomic(join(this.dir, 'state.json'), JSON.stringify(state));
  }

  /** The saved state alone (no tensors), or undefined when there is no checkpoint. */
  state(): CheckpointState | undefined {
    return this.exists() ? (JSON.parse(readFileSync(join(this.dir, 'state.json'), 'utf8')) as CheckpointState) : undefined;
  }

  load(): { state: CheckpointState; weights: Map<string, tf.Tensor>; best: Map<string, tf.Tensor> | undefined; optimizer: Map<string, tf.Tensor> } {
    const state = JSON.parse(readFileSync(join(this.dir, 'state.json'), 'utf8')) as CheckpointState;
    return {
      state,
      weights: loadTensors(join(this.dir, 'weights')),
      best: existsSync(join(this.dir, 'best.json')) ? loadTensors(join(this.dir, 'best')) : undefined,
      optimizer: loadTensors(join(this.dir, 'optimizer')),
    };
  }
}
