// Group k-fold cross-validation, validation only:
//   npm run bench -- cv [--folds 5] [--seed S] [--out DIR] [--baseline CV_DIR] -- TRAIN FLAGS
// trains one model per fold (`--split source` unless the flags name another group split: whole papers and
// patients held out, as the test set's are) and pools the held-out scores: every training image is scored once,
// by the one model that did not train on it (with the model's TTA). The pooled AUC estimates how the flags do on
// unseen sources from all 543 images, not from one split of 108. The folds also make an ensemble (OUT/ensemble,
// threshold by Youden's J on the pooled scores) that `covid-ct evaluate` can score. --baseline names another cv
// output folder made with the same folds (same --folds and --seed): the AUC difference to it on the same images,
// with a paired bootstrap CI, is what a choice should rest on. Nothing here reads the test split. Models already
// in OUT are read, not trained again. One JSON line at the end.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PROJECT_ROOT } from '../src/config/index.ts';
import { bootstrapAucCi, bootstrapAucDifference } from '../src/evaluation/metrics.ts';
import { createEnsemble } from '../src/inference/ensemble.ts';
import { benchArgs, foldsAndSeed } from './lib/args.ts';
import { mean, meanWall, round, sd, trainedRun } from './lib/runs.ts';
import type { TrainedRun } from './lib/runs.ts';

const { option, trainFlags } = benchArgs(process.argv.slice(2));
const { folds, seed } = foldsAndSeed(option);
if (trainFlags.some((flag) => ['--evaluate', '--out', '--seed', '--folds', '--fold', '--refit'].includes(flag))) {
  throw new Error('train flags may not include --evaluate, --out, --seed, --folds, --fold or --refit: the cross-validation sets them (a refit would train on its held-out fold; measure it with bench nested), and never evaluates on test');
}
const splitAt = trainFlags.indexOf('--split');
const split = splitAt >= 0 ? trainFlags[splitAt + 1] : 'source';
// Each fold's model must score images it never trained on: no refit, whatever the config says.
const splitFlags = [...(splitAt >= 0 ? [] : ['--split', 'source']), '--no-refit'];
const label = trainFlags.join(' ').replace(/[^\w.=-]+/g, '_') || 'defaults';
const baselineOption = option('--baseline');
const baselineDir = baselineOption ? resolve(baselineOption) : undefined;
// Checked before hours of training, not after.
if (baselineDir && !existsSync(join(baselineDir, 'ensemble', 'validation-predictions.json'))) throw new Error(`--baseline ${baselineDir}: no ensemble/validation-predictions.json (not a finished cv output folder)`);
const outDir = resolve(option('--out') ?? join(PROJECT_ROOT, 'runs', 'cv', `${label}-k${folds}-seed${seed}`));

const runs: TrainedRun[] = [];
for (let fold = 1; fold <= folds; fold++) {
  const run = await trainedRun(join(outDir, `fold${fold}`), [...trainFlags, ...splitFlags, '--folds', String(folds), '--fold', String(fold), '--seed', String(seed)]);
  runs.push(run);
  console.log(`fold ${fold}/${folds}: validation AUC ${run.validation.auc.toFixed(4)}, accuracy ${run.validation.accuracy.toFixed(4)}, loss ${run.validation.loss.toFixed(4)}`);
}
type PooledRow = { path: string; label: number; probability: number };
const pooledScores = (dir: string) => JSON.parse(readFileSync(join(dir, 'ensemble', 'validation-predictions.json'), 'utf8')) as PooledRow[];
const card = await createEnsemble(runs.map((r) => r.dir), join(outDir, 'ensemble'), 'pooled');
const pooled = pooledScores(outDir);
const labels = pooled.map((r) => r.label);
const ci = bootstrapAucCi(labels, pooled.map((r) => r.probability), { seed });
console.log(`pooled over ${pooled.length} held-out images: AUC ${card.validation.auc!.toFixed(4)} (95 % CI ${ci.low.toFixed(3)}-${ci.high.toFixed(3)}); the ensemble of the folds: ${join(outDir, 'ensemble')}`);

/** This run's pooled AUC minus the baseline's, on the same images (the folds must match). */
function againstBaseline(dir: string) {
  const baseline = new Map(pooledScores(dir).map((r) => [r.path, r]));
  const matched = pooled.map((r) => baseline.get(r.path));
  if (baseline.size !== pooled.length || matched.some((b, i) => !b || b.label !== pooled[i]!.label)) {
    throw new Error(`--baseline ${dir} holds out other images: it needs the same data, --folds and --seed`);
  }
  const d = bootstrapAucDifference(labels, pooled.map((r) => r.probability), matched.map((b) => b!.probability), { seed });
  console.log(`against ${dir}: AUC ${d.difference >= 0 ? '+' : ''}${d.difference.toFixed(4)} (paired 95 % CI ${d.low.toFixed(3)} to ${d.high.toFixed(3)}; not above it in ${(100 * d.atOrBelowZero).toFixed(1)} % of resamples)`);
  return { dir, auc_difference: round(d.difference), ci: [round(d.low), round(d.high)], at_or_below_zero: round(d.atOrBelowZero) };
}
const baseline = baselineDir ? againstBaseline(baselineDir) : null;
const foldAucs = runs.map((r) => r.validation.auc);
console.log(
  JSON.stringify({
    bench: 'cv',
    args: trainFlags,
    split,
    folds,
    seed,
    images: pooled.length,
    cv_auc: round(card.validation.auc!),
    cv_auc_ci: [round(ci.low), round(ci.high)],
    fold_auc_mean: round(mean(foldAucs)),
    fold_auc_sd: round(sd(foldAucs)),
    fold_auc: foldAucs.map(round),
    // At the threshold chosen on these same pooled scores: optimistic, for orientation only.
    cv_accuracy: round(card.validation.accuracy!),
    cv_sensitivity: round(card.validation.sensitivity!),
    cv_specificity: round(card.validation.specificity!),
    wall_s: meanWall(runs),
    ...(baseline && { vs_baseline: baseline }),
  }),
);
