// A training choice measured on validation only: `npm run bench -- sweep [--seeds N] [--out DIR] -- TRAIN FLAGS`
// trains seeds 1..N with the given train flags (e.g. `-- --label-smoothing 0.1`) and reports the validation AUC,
// accuracy and loss of each model (TTA as the defaults say). Nothing here reads the test split, so a sweep can
// choose a default honestly. Models already in --out are read, not trained again. One JSON line at the end.
import { join, resolve } from 'node:path';
import { PROJECT_ROOT } from '../src/config/index.ts';
import { benchArgs } from './lib/args.ts';
import { mean, meanWall, round, sd, trainedRun } from './lib/runs.ts';
import type { TrainedRun } from './lib/runs.ts';

const { option, trainFlags } = benchArgs(process.argv.slice(2));
const seeds = Number(option('--seeds') ?? 3);
if (!Number.isInteger(seeds) || seeds < 1 || seeds > 20) throw new Error(`--seeds must be an integer in [1, 20], got ${option('--seeds')}`);
if (trainFlags.some((flag) => ['--evaluate', '--out', '--seed'].includes(flag))) throw new Error('train flags may not include --evaluate, --out or --seed: the sweep sets them (and never evaluates on test)');
const label = trainFlags.join(' ').replace(/[^\w.=-]+/g, '_') || 'defaults';
const outDir = resolve(option('--out') ?? join(PROJECT_ROOT, 'runs', 'sweep', label));

const runs: TrainedRun[] = [];
for (let seed = 1; seed <= seeds; seed++) {
  // A refit's validation figures are its selection run's: the second run would add time and nothing to read.
  const run = await trainedRun(join(outDir, `seed${seed}`), [...trainFlags, '--seed', String(seed), '--no-refit']);
  runs.push(run);
  const { auc, accuracy, loss } = run.validation;
  console.log(`seed ${seed}: validation AUC ${auc.toFixed(4)}, accuracy ${accuracy.toFixed(4)}, loss ${loss.toFixed(4)}`);
}
const aucs = runs.map((r) => r.validation.auc);
console.log(
  JSON.stringify({
    bench: 'sweep',
    args: trainFlags,
    seeds,
    val_auc: round(mean(aucs)),
    val_auc_sd: round(sd(aucs)),
    val_auc_by_seed: aucs.map(round),
    val_accuracy: round(mean(runs.map((r) => r.validation.accuracy))),
    val_loss: round(mean(runs.map((r) => r.validation.loss))),
    wall_s: meanWall(runs),
  }),
);
