// What the validation-only benchmarks (sweep, cv) share: train a model directory unless it is already there,
// read its validation figures, and summarise them.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';

export interface TrainedRun {
  dir: string;
  validation: { auc: number; accuracy: number; loss: number };
  /** Seconds spent training here; null when the model was already there. */
  wallS: number | null;
}

/** `covid-ct train FLAGS --out DIR`, or the model already in DIR (so an interrupted benchmark continues). */
export async function trainedRun(dir: string, flags: readonly string[]): Promise<TrainedRun> {
  let wallS: number | null = null;
  if (!existsSync(join(dir, 'model.json'))) {
    const started = performance.now();
    const code = await main(['node', 'covid-ct', 'train', ...flags, '--out', dir]);
    if (code !== 0) throw new Error(`covid-ct train ${flags.join(' ')} exited ${code}`);
    wallS = (performance.now() - started) / 1000;
  }
  const { validation } = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
  return { dir, validation, wallS };
}

export const mean = (values: readonly number[]) => values.reduce((a, b) => a + b, 0) / values.length;
/** Population standard deviation (0 for one value). */
export const sd = (values: readonly number[]) => Math.sqrt(mean(values.map((v) => (v - mean(values)) ** 2)));
export const round = (v: number) => Number(v.toFixed(4));
/** Mean training seconds, or null when some runs were reused rather than timed. */
export const meanWall = (runs: readonly TrainedRun[]) => (runs.every((r) => r.wallS !== null) ? round(mean(runs.map((r) => r.wallS!))) : null);
