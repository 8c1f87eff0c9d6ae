// Nested cross-validation, validation only (the test split is never read):
//   npm run bench -- nested [--folds 5] [--seed S] [--only 4,5] [--out DIR] [--baseline NESTED_DIR] -- TRAIN FLAGS
// The outer loop deals the training images into k source folds (whole papers and patients, the folds of
// `--split source --folds k --seed S`, as bench cv). Each fold in turn becomes the test folder of a linked dataset
// made of the other folds (OUT/data/foldI: symlinks, metadata.csv and provenance.csv rewritten), on which
// `covid-ct train FLAGS` runs exactly as on the real data, inner split and every choice included, and
// `covid-ct evaluate` scores the held-out fold with the model's own threshold. Every image is then scored once
// by a model that neither trained nor chose anything on it: honest AUC, accuracy, sensitivity and specificity
// for whole training procedures (a refit, an ensemble rule), which bench cv cannot measure. A refit's selection
// run is scored too and compared with a paired bootstrap, as is --baseline (another nested output, same folds).
// Models and evaluations already in OUT are read, not made again. One JSON line at the end.
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { main } from '../src/cli/main.ts';
import { PROJECT_ROOT, resolveConfig, resolveDataRoot } from '../src/config/index.ts';
import { ImageCache } from '../src/data/cache.ts';
import { csvField, parseCsv } from '../src/data/csv.ts';
import { datasetPath, listSplit } from '../src/data/dataset.ts';
import { splitTrainingImages } from '../src/data/split.ts';
import { bootstrapAucCi, bootstrapAucDifference, confusionFromPredictions, ratesFromCounts, rocAuc } from '../src/evaluation/metrics.ts';
import { benchArgs, foldsAndSeed } from './lib/args.ts';
import { meanWall, round, trainedRun } from './lib/runs.ts';
import type { TrainedRun } from './lib/runs.ts';

const { option, trainFlags } = benchArgs(process.argv.slice(2));
const { folds, seed } = foldsAndSeed(option);
const only = option('--only')?.split(',').map(Number) ?? Array.from({ length: folds }, (_, i) => i + 1);
if (only.some((f) => !Number.isInteger(f) || f < 1 || f > folds)) throw new Error(`--only must list folds in 1..${folds}, got ${option('--only')}`);
if (trainFlags.some((flag) => ['--evaluate', '--out', '--seed', '--data', '--resume'].includes(flag))) {
  throw new Error('train flags may not include --evaluate, --out, --seed, --data or --resume: the nested cross-validation sets them');
}
const label = trainFlags.join(' ').replace(/[^\w.=-]+/g, '_') || 'defaults';
const baselineOption = option('--baseline');
const baselineDir = baselineOption ? resolve(baselineOption) : undefined;
if (baselineDir && !existsSync(join(baselineDir, 'pooled.json'))) throw new Error(`--baseline ${baselineDir}: no pooled.json (not a finished nested output folder)`);
const outDir = resolve(option('--out') ?? join(PROJECT_ROOT, 'runs', 'nested', `${label}-k${folds}-seed${seed}`));

// The outer folds: the real training folder split as `--split source --folds k --fold i` would split it.
const config = resolveConfig({ seed, split: 'source', folds, fold: 1 });
const datasetDir = datasetPath(resolveDataRoot(), config);
const cache = new ImageCache(config.data.cacheDir, config.data);
const records = listSplit(datasetDir, 'train', config);

const csvText = (rows: Array<Record<string, string>>): string => {
  const columns = Object.keys(rows[0] ?? {});
  return `${[columns.join(','), ...rows.map((r) => columns.map((c) => csvField(r[c])).join(','))].join('\n')}\n`;
};

/** OUT/data/foldI/covid-ct: the other folds as training images, fold I as test images (linked, never copied). */
async function nestedDataset(fold: number): Promise<string> {
  const root = join(outDir, 'data', `fold${fold}`);
  const dir = join(root, config.data.dataset);
  if (existsSync(join(dir, 'provenance.csv'))) return root;
  const manifest = await splitTrainingImages(records, datasetDir, { ...config, fold }, cache);
  const heldOut = new Set(manifest.entries.filter((e) => e.split === 'val').map((e) => e.path));
  rmSync(dir, { recursive: true, force: true });
  const moved = new Map<string, string>();
  for (const record of records) {
    const folder = heldOut.has(record.relPath) ? config.data.testDir : config.data.trainDir;
    const relPath = join(folder, record.className, basename(record.path));
    mkdirSync(join(dir, folder, record.className), { recursive: true });
    symlinkSync(record.path, join(dir, relPath));
    moved.set(record.relPath, relPath);
  }
  // The per-image tables follow their images (rows of the real test images are left out with them).
  for (const file of ['metadata.csv', 'provenance.csv']) {
    const rows = parseCsv(readFileSync(join(datasetDir, file), 'utf8')).filter((r) => moved.has(r.path!)).map((r) => ({ ...r, path: moved.get(r.path!)! }));
    writeFileSync(join(dir, file), csvText(rows));
  }
  return root;
}

interface Scored {
  key: string;
  label: number;
  probability: number;
  predicted: number;
}

/** `covid-ct evaluate` of a model on its nested dataset's test folder (the held-out fold), or the scores already there. */
async function heldOutScores(modelDir: string, dataRoot: string): Promise<Scored[]> {
  const metrics = join(modelDir, 'evaluation', 'metrics.json');
  if (!existsSync(metrics)) {
    const code = await main(['node', 'covid-ct', 'evaluate', '--model', modelDir, '--data', dataRoot]);
    if (code !== 0) throw new Error(`covid-ct evaluate --model ${modelDir} exited ${code}`);
  }
  const { predictions } = JSON.parse(readFileSync(metrics, 'utf8')) as { predictions: Array<{ path: string; label: number; probability: number; predicted: number }> };
  // Keyed by class folder and file name: the same image under its training and its nested test path.
  return predictions.map((p) => ({ key: p.path.split('/').slice(-2).join('/'), label: p.label, probability: p.probability, predicted: p.predicted }));
}

const runs: TrainedRun[] = [];
const pooled: Scored[] = [];
const selectionPooled: Scored[] = [];
const foldAuc: number[] = [];
for (const fold of only) {
  const dataRoot = await nestedDataset(fold);
  const run = await trainedRun(join(outDir, `fold${fold}`), [...trainFlags, '--seed', String(seed), '--data', dataRoot]);
  runs.push(run);
  const scores = await heldOutScores(run.dir, dataRoot);
  pooled.push(...scores);
  foldAuc.push(rocAuc(scores.map((s) => s.label), scores.map((s) => s.probability)));
  // A refit keeps the run that chose its epoch: the same procedure without the refit, for free.
  const selection = existsSync(join(run.dir, 'selection', 'model.json')) ? await heldOutScores(join(run.dir, 'selection'), dataRoot) : [];
  selectionPooled.push(...selection);
  const selectionAuc = selection.length > 0 ? `; its selection run ${rocAuc(selection.map((s) => s.label), selection.map((s) => s.probability)).toFixed(4)}` : '';
  console.log(`fold ${fold}/${folds}: ${scores.length} held-out images, AUC ${foldAuc.at(-1)!.toFixed(4)}${selectionAuc}`);
}
writeFileSync(join(outDir, 'pooled.json'), `${JSON.stringify(pooled, null, 2)}\n`);

const labels = pooled.map((s) => s.label);
const summary = (scores: Scored[]) => {
  const rates = ratesFromCounts(confusionFromPredictions(scores.map((s) => s.label), scores.map((s) => s.predicted)));
  return { auc: rocAuc(scores.map((s) => s.label), scores.map((s) => s.probability)), accuracy: rates.accuracy, sensitivity: rates.sensitivity, specificity: rates.specificity };
};
const result = summary(pooled);
const ci = bootstrapAucCi(labels, pooled.map((s) => s.probability), { seed });
console.log(
  `pooled over ${pooled.length} held-out images: AUC ${result.auc.toFixed(4)} (95 % CI ${ci.low.toFixed(3)}-${ci.high.toFixed(3)}), ` +
    `accuracy ${result.accuracy.toFixed(4)}, sensitivity ${result.sensitivity.toFixed(4)}, specificity ${result.specificity.toFixed(4)} (each model's own threshold)`,
);

/** This run's pooled AUC minus another's on the same images, with a paired bootstrap CI. */
function against(name: string, other: Scored[]) {
  const byKey = new Map(other.map((s) => [s.key, s]));
  const matched = pooled.map((s) => byKey.get(s.key));
  if (byKey.size !== pooled.length || matched.some((m, i) => !m || m.label !== pooled[i]!.label)) throw new Error(`${name} scored other images: it needs the same --folds, --seed and --only`);
  const d = bootstrapAucDifference(labels, pooled.map((s) => s.probability), matched.map((m) => m!.probability), { seed });
  const theirs = summary(matched.map((m) => m!));
  console.log(`against ${name}: AUC ${d.difference >= 0 ? '+' : ''}${d.difference.toFixed(4)} (paired 95 % CI ${d.low.toFixed(3)} to ${d.high.toFixed(3)}); its accuracy ${theirs.accuracy.toFixed(4)}`);
  return { auc: round(theirs.auc), accuracy: round(theirs.accuracy), auc_difference: round(d.difference), ci: [round(d.low), round(d.high)], at_or_below_zero: round(d.atOrBelowZero) };
}
const vsSelection = selectionPooled.length > 0 ? against('the selection runs (without the refit)', selectionPooled) : null;
const vsBaseline = baselineDir ? against(baselineDir, JSON.parse(readFileSync(join(baselineDir, 'pooled.json'), 'utf8')) as Scored[]) : null;
console.log(
  JSON.stringify({
    bench: 'nested',
    args: trainFlags,
    folds,
    seed,
    held_out_folds: only,
    images: pooled.length,
    auc: round(result.auc),
    auc_ci: [round(ci.low), round(ci.high)],
    accuracy: round(result.accuracy),
    sensitivity: round(result.sensitivity),
    specificity: round(result.specificity),
    fold_auc: foldAuc.map(round),
    wall_s: meanWall(runs),
    ...(vsSelection && { vs_selection: vsSelection }),
    ...(vsBaseline && { vs_baseline: { dir: baselineDir, ...vsBaseline } }),
  }),
);
