// The main job as a benchmark: (optional pre-training +) two-phase training + evaluation with the defaults.
// Extra arguments go to `covid-ct train` (e.g. --pretrain sars-cov-2-ct-224, --epochs2 10).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../src/cli/main.ts';
import { PROJECT_ROOT } from '../src/config/index.ts';

const out = join(PROJECT_ROOT, 'runs', `bench-train-${Date.now()}`);
const started = performance.now();
const code = await main(['node', 'covid-ct', 'train', '--out', out, '--evaluate', ...process.argv.slice(2)]);
if (code !== 0) process.exit(code);
const wallS = (performance.now() - started) / 1000;
const card = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8'));
const metrics = JSON.parse(readFileSync(join(out, 'evaluation', 'metrics.json'), 'utf8'));
console.log(
  JSON.stringify({
    bench: 'train',
    wall_s: Number(wallS.toFixed(1)),
    test_accuracy: metrics.accuracy,
    test_auc: metrics.auc,
    test_auc_ci: [metrics.aucCi.low, metrics.aucCi.high],
    test_sensitivity: metrics.sensitivity,
    test_specificity: metrics.specificity,
    val_accuracy: card.validation.accuracy,
    seed: card.seed,
    args: process.argv.slice(2),
  }),
);
