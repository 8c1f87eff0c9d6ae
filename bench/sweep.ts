// A training choice measured on validation only: `npm run bench -- sweep [--seeds N] [--out DIR] -- TRAIN FLAGS`
// trains seeds 1..N with the given train flags (e.g. `-- --label-smoothing 0.1`) and reports the validation AUC,
// accuracy and loss of each model (TTA as the defaults say). Nothing here reads the test split, so a sweep can
// choose a default honestly. Models already in --out are read, not trained again. One JSON line at the end.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PROJECT_ROOT } from '../src/config/index.ts';
import { main } from '../src/cli/main.ts';
import { benchArgs } from './lib/args.ts';

const { option, trainFlags } = benchArgs(process.argv.slice(2));
const seeds = Number(option('--seeds') ?? 3);
if (!Number.isInteger(seeds) || seeds < 1 || seeds > 20) throw new Error(`--seeds must be an integer in [1, 20], got ${option('--seeds')}`);
if (trainFlags.some((flag) => ['--evaluate', '--out', '--seed'].includes(flag))) throw new Error('train flags may not include --evaluate, --out or --seed: the sweep sets them (and never evaluates on test)');
const label = trainFlags.join(' ').replace(/[^\w.=-]+/g, '_') || 'defaults';
const outDir = resolve(option('--out') ?? join(PROJECT_ROOT, 'runs', 'sweep', label));

const rows: Array<{ seed: number; auc: number; accuracy: number; loss: number; wallS: number | null }> = [];
for (let seed = 1; seed <= seeds; seed++) {
  const dir = join(outDir, `seed${seed}`);
  let wallS: number | null = null;
  if (!existsSync(join(dir, 'model.json'))) {
    const started = performance.now();
    const code = await main(['node', 'covid-ct', 'train', ...trainFlags, '--seed', String(seed), '--out', dir]);
    if (code !== 0) throw new Error(`covid-ct train ${trainFlags.join(' ')} --seed ${seed} exited ${code}`);
    wallS = (performance.now() - started) / 1000;
  }
  const validation = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')).validation;
  rows.push({ seed, auc: validation.auc, accuracy: validation.accuracy, loss: validation.loss, wallS });
  console.log(`seed ${seed}: validation AUC ${validation.auc.toFixed(4)}, accuracy ${validation.accuracy.toFixed(4)}, loss ${validation.loss.toFixed(4)}`);
}
const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
const sd = (values: number[]) => Math.sqrt(mean(values.map((v) => (v - mean(values)) ** 2)));
const round = (v: number) => Number(v.toFixed(4));
const aucs = rows.map((r) => r.auc);
console.log(
  JSON.stringify({
    bench: 'sweep',
    args: trainFlags,
    seeds,
    val_auc: round(mean(aucs)),
    val_auc_sd: round(sd(aucs)),
    val_auc_by_seed: aucs.map(round),
    val_accuracy: round(mean(rows.map((r) => r.accuracy))),
    val_loss: round(mean(rows.map((r) => r.loss))),
    wall_s: rows.every((r) => r.wallS !== null) ? round(mean(rows.map((r) => r.wallS!))) : null,
  }),
);
