/** `evaluate`: a saved model on the test folder, with the threshold it chose on validation, into a report. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Config } from '../config/index.ts';
import type { ImageCache } from '../data/cache.ts';
import { listImages, listSplit } from '../data/dataset.ts';
import type { ImageRecord } from '../data/dataset.ts';
import type { SplitManifest } from '../data/split.ts';
import { DatasetError } from '../data/errors.ts';
import { loadImages, mapLimit } from '../data/loader.ts';
import { loadModel } from '../inference/model.ts';
import type { LoadModelOptions } from '../inference/model.ts';
import type { Evaluation } from './evaluate.ts';
import { evaluatePredictions } from './evaluate.ts';
import type { EpochRecord } from './plots.ts';
import { formatSwapProbe, shortcutProbes } from './probes.ts';
import type { FormatSwapProbe, ProbeRecord, ShortcutProbes } from './probes.ts';
import { imageFacts } from '../data/inspect.ts';
import type { ImageFacts } from '../data/inspect.ts';
import { jpegReencode } from '../data/preprocess/jpeg.ts';
import { Rng } from '../data/random.ts';
import { cohortSections } from './cohort-report.ts';
import type { CohortResults } from './cohorts.ts';
import { cohortResults, cohortToJson, locateMetadata } from './cohorts.ts';
import type { WrittenReport } from './report.ts';
import { writeEvaluationReport } from './report.ts';

export interface ModelEvaluation {
  evaluation: Evaluation;
  written: WrittenReport;
  failures: string[];
  probes: { test: ShortcutProbes; validation: ShortcutProbes | null };
  /** The evaluated non-COVID PNGs against their own JPEG round trips. */
  formatSwap: FormatSwapProbe;
  /** Patient level and per source, from the metadata.csv beside the evaluated folder. */
  cohorts: CohortResults;
}

/**
 * Shortcut probes on the test predictions, and on the model's saved validation predictions when their files are in
 * this dataset (COVID-CT's test set is all PNG, so the container probe is only defined on validation).
 */
async function shortcutProbesOf(modelDir: string, test: ProbeRecord[], testFacts: Map<string, ImageFacts>, datasetDir: string, cache: ImageCache): Promise<ModelEvaluation['probes']> {
  const testProbes = shortcutProbes(test, testFacts);
  const file = join(modelDir, 'validation-predictions.json');
  if (!existsSync(file)) return { test: testProbes, validation: null };
  const rows = (JSON.parse(readFileSync(file, 'utf8')) as ProbeRecord[]).map((r) => ({ ...r, path: join(datasetDir, r.path) }));
  if (!rows.every((r) => existsSync(r.path))) return { test: testProbes, validation: null };
  return { test: testProbes, validation: shortcutProbes(rows, await imageFacts(rows.map((r) => r.path), cache)) };
}

/** `selection`: a refit's selection run, which holds the held-out validation scores the refit has not. */
function describeProbes(probes: ModelEvaluation['probes'], selection: string | undefined): string {
  const f = (v: number | null) => (v === null ? 'n/a' : v.toFixed(3));
  const one = (p: ShortcutProbes) => `PNG vs JPEG inside non-COVID ${f(p.formatAuc)}, colour marks inside COVID ${f(p.colourAuc.covid)} and non-COVID ${f(p.colourAuc.nonCovid)}`;
  const none = selection ? `n/a (a refit trained on its validation images; its selection run ${selection} has the held-out scores)` : 'n/a';
  return `test: ${one(probes.test)}; validation: ${probes.validation ? one(probes.validation) : none}`;
}

/** JPEG quality of the container swap probe: the middle of training's re-encoding range. */
const SWAP_QUALITY = 75;

/** Which images `evaluate` scores: the dataset's test folder (default) or the model's validation split. */
export type EvaluationSplit = 'test' | 'val';
export const EVALUATION_SPLITS: readonly EvaluationSplit[] = ['test', 'val'];

/** The validation images recorded in the model's split.json, resolved in `datasetDir`. */
function validationRecords(modelDir: string, datasetDir: string): ImageRecord[] {
  const file = join(modelDir, 'split.json');
  if (!existsSync(file)) throw new DatasetError(`--split val: ${file} does not exist (an ensemble has no split of its own: evaluate a member)`);
  const manifest = JSON.parse(readFileSync(file, 'utf8')) as SplitManifest;
  return manifest.entries.filter((e) => e.split === 'val').map((e) => {
    const path = join(datasetDir, e.path);
    if (!existsSync(path)) throw new DatasetError(`--split val: ${path} (listed in ${file}) does not exist: is --data the dataset the model was trained on?`);
    return { path, relPath: e.path, className: e.className, label: e.label };
  });
}

export async function evaluateModel(
  modelDir: string,
  ctx: { config: Config; datasetDir: string; cache: ImageCache },
  out = join(modelDir, 'evaluation'),
  options: LoadModelOptions & { images?: string; metadata?: string; split?: EvaluationSplit } = {},
): Promise<ModelEvaluation> {
  const model = await loadModel(modelDir, { ...(options.tta && { tta: options.tta }), engine: ctx.config.engine });
  try {
    const { config, datasetDir, cache } = ctx;
    // --images: any folder with one subfolder per class, instead of the dataset's test folder; --split val: the
    // model's own validation images (for choices made on validation, e.g. whether TTA helps).
    if (options.images && options.split === 'val') throw new DatasetError('evaluate: --images and --split val name two different image sets; give one');
    const refit = model.card.refit;
    if (refit && options.split === 'val') {
      throw new DatasetError(`--split val: ${modelDir} is a refit, trained on its validation images too; evaluate its selection run ${join(modelDir, refit.selection)} instead`);
    }
    const testFolder = options.images ?? (options.split === 'val' ? datasetDir : join(datasetDir, config.data.testDir));
    const records = options.images
      ? listImages(options.images, '.', config.data.classes)
      : options.split === 'val' ? validationRecords(modelDir, datasetDir) : listSplit(datasetDir, 'test', config);
    const positive = config.data.classes.find((c) => c.label === 1)!.name;
    const negative = config.data.classes.find((c) => c.label === 0)!.name;
    // metadata.csv: in the evaluated folder or a parent up to the data root (the dataset's parent); read before
    // predicting so a malformed file fails at once.
    const cohortOptions = {
      folder: testFolder,
      root: dirname(datasetDir),
      metadataFile: options.metadata,
      topK: config.evaluate.patientTopK,
      sourceColumn: config.evaluate.sourceColumn,
      threshold: model.card.threshold,
      classNames: [negative, positive] as const,
      bootstrap: { seed: config.seed },
    };
    const metadata = locateMetadata(cohortOptions);
    const { images, failures } = await loadImages(records, cache, { size: model.card.imageSize, strict: config.data.strict });
    if (images.length === 0) throw new DatasetError(`no readable test images in ${datasetDir}`);
    const probabilities = await model.predict(images);
    const predictions: ProbeRecord[] = images.map((image, i) => ({ path: image.record.path, label: image.record.label, probability: probabilities[i]! }));
    const evaluation = evaluatePredictions(predictions, { threshold: model.card.threshold, classNames: [negative, positive], bootstrap: { seed: config.seed } });
    const facts = await imageFacts(predictions.map((r) => r.path), cache);
    const probes = await shortcutProbesOf(modelDir, predictions, facts, datasetDir, cache);
    // The counterfactual container probe: non-COVID PNGs scored again after a JPEG round trip.
    const pngNonCovid = images.map((image, i) => ({ image, i })).filter(({ image }) => image.record.label === 0 && facts.get(image.record.path)?.format === 'png');
    const copies = await mapLimit(pngNonCovid, 4, ({ image }) => jpegReencode(image, new Rng(0), { minQuality: SWAP_QUALITY, maxQuality: SWAP_QUALITY }));
    const formatSwap = formatSwapProbe(pngNonCovid.map(({ i }) => probabilities[i]!), Array.from(await model.predict(copies)), SWAP_QUALITY);
    const cohorts = cohortResults(predictions, cohortOptions, metadata);
    const historyFile = join(modelDir, 'history.json');
    const history = existsSync(historyFile) ? (JSON.parse(readFileSync(historyFile, 'utf8')) as EpochRecord[]) : undefined;
    const written = await writeEvaluationReport(out, evaluation, {
      history,
      title: `covid-ct evaluation: ${model.card.id}`,
      details: {
        model: `${model.card.id} (${modelDir})`,
        backbone: `${model.card.backbone.name}, fine-tuned from ${model.card.backbone.fineTuneAt}`,
        threshold: `${model.card.threshold.toFixed(4)} (${model.card.thresholdRule})`,
        'test-time augmentation': `${model.tta}${options.tta ? ' (--tta)' : " (the model's own)"}`,
        [options.split === 'val' ? 'validation images' : 'test folder']: options.split === 'val' ? `${records.length} from ${join(modelDir, 'split.json')}` : testFolder,
        'unreadable test images': failures.length ? failures.map((f) => f.message).join('; ') : 'none',
        'shortcut probes (AUC, 0.5 = none)': describeProbes(probes, refit && join(modelDir, refit.selection)),
        'container swap probe': formatSwap.auc === null ? 'n/a (no non-COVID PNG images)' : `${formatSwap.positives} non-COVID PNGs vs their JPEG copies (quality ${SWAP_QUALITY}): AUC ${formatSwap.auc.toFixed(3)}, mean score change ${formatSwap.meanShift!.toFixed(4)}`,
        metadata: cohorts.metadata.file ? `${cohorts.metadata.file} (${cohorts.metadata.matched} of ${cohorts.metadata.images} images matched)` : 'none found',
      },
      extra: { shortcutProbes: { ...probes, formatSwap }, ...cohortToJson(cohorts) },
      sections: cohortSections(cohorts, [negative, positive]),
    });
    return { evaluation, written, failures: failures.map((f) => f.message), probes, formatSwap, cohorts };
  } finally {
    await model.dispose();
  }
}
