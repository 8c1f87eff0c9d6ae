import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, Option } from 'commander';
import type { Config, DeepPartial, IntensityMode } from '../config/index.ts';
import { INTENSITY_MODES, resolveConfig, resolveDataRoot } from '../config/index.ts';
import { holdsClassFolders, listImages, listSplit } from '../data/dataset.ts';
import type { ImageRecord } from '../data/dataset.ts';
import { DatasetError } from '../data/errors.ts';
import { splitTrainingImages } from '../data/split.ts';
import type { SplitManifest } from '../data/split.ts';
import { headlineText } from '../evaluation/evaluate.ts';
import { evaluateModel, EVALUATION_SPLITS } from '../evaluation/evaluate-model.ts';
import type { EvaluationSplit } from '../evaluation/evaluate-model.ts';
import { cohortHeadline } from '../evaluation/cohorts.ts';
import type { StageData } from '../training/train.ts';
import { samePosition } from '../training/checkpoint.ts';
import { trainModel } from '../training/refit.ts';
import { schedulePositions } from '../training/train.ts';
import { createEnsemble, ENSEMBLE_VALIDATIONS, type EnsembleValidation } from '../inference/ensemble.ts';
import { addCommonFlags, addFoldFlags, addModelFlags, context, foldOverrides, integer, number } from './options.ts';
import type { CommonFlags } from './options.ts';

function stageFrom(name: string, records: ImageRecord[], manifest: SplitManifest): StageData {
  const val = new Set(manifest.entries.filter((e) => e.split === 'val').map((e) => e.path));
  return { name, train: records.filter((r) => !val.has(r.relPath)), val: records.filter((r) => val.has(r.relPath)) };
}

interface TrainFlags extends CommonFlags {
  out?: string;
  backbone?: string;
  weights?: string;
  inputSize?: number;
  averageLast?: number;
  fineTuneAt?: string;
  epochs1?: number;
  epochs2?: number;
  rounds?: number;
  views?: number;
  dropout?: number;
  labelSmoothing?: number;
  mixup?: number;
  pretrain?: string;
  intensity?: IntensityMode;
  split?: Config['split'];
  folds?: number;
  fold?: number;
  evaluate?: boolean;
  resume?: string;
  refit?: boolean;
  workers?: number;
}

export function trainCommand(): Command {
  return addFoldFlags(addModelFlags(addCommonFlags(
    new Command('train')
      .description('two-phase transfer learning on the training folder; saves the model directory (weights, config, split, threshold)')
      .option('--out <dir>', 'model directory (default runs/<backbone>-<time>)')
      .option('--backbone <name>', 'backbone registry name')
      .option('--weights <file>', 'weight file for the backbone (a Keras .h5 for efficientnet-b0)')
      .option('--input-size <px>', "backbone input side in pixels (default: the backbone's own, 224)", integer('--input-size'))
      .option('--fine-tune-at <layer>', 'first layer or block unfrozen in phase 2')
      .option('--epochs1 <n>', 'phase 1 epochs (head only)', integer('--epochs1'))
      .option('--epochs2 <n>', 'phase 2 epochs (top block unfrozen)', integer('--epochs2'))
      .option('--rounds <n>', 'how many times both phases run', integer('--rounds'))
      .option('--views <k>', 'augmented views cached per training image', integer('--views'))
      .option('--dropout <rate>', 'dropout rate before the dense logit', number('--dropout'))
      .option('--label-smoothing <s>', 'training targets 1 - s/2 and s/2 (0 = off)', number('--label-smoothing'))
      .option('--mixup <alpha>', "mixup's alpha on the cached features (0 = off)", number('--mixup'))
      .option('--average-last <n>', "keep the mean weights of the last n phase-2 epochs when their validation loss is lowest (0 = off)", integer('--average-last'))
      .option('--split <method>', 'ordered | patient | official | source')
      .addOption(new Option('--intensity <mode>', "intensity normalisation of every image: stretch (1st-99th luminance percentile to 0-255) or none").choices(INTENSITY_MODES as IntensityMode[]))
      .option('--pretrain <dataset>', 'pre-train on this dataset folder first (e.g. sars-cov-2-ct-224)')
      .option('--workers <n>', 'worker_threads sharing each phase-2 batch on the tfjs-wasm trainer (--engine wasm)', integer('--workers'))
      .option('--refit', 'then train again on training + validation images up to the epoch chosen on validation (threshold from the first run, kept in <out>/selection)')
      .option('--no-refit', 'keep the run whose epoch was chosen on validation (no second run)')
      .option('--resume <dir>', 'continue a stopped run from its model directory (its config and split are reused)')
      .option('--evaluate', 'evaluate on the test folder afterwards and write the report'),
  ))).action(async (flags: TrainFlags) => {
    const overrides: DeepPartial<Config> = {
      ...(flags.split && { split: flags.split }),
      ...foldOverrides(flags),
      ...(flags.intensity && { preprocess: { intensity: flags.intensity } }),
      train: {
        ...(flags.backbone && { backbone: flags.backbone }),
        ...(flags.weights && { weights: resolve(flags.weights) }),
        ...(flags.inputSize !== undefined && { inputSize: flags.inputSize }),
        ...(flags.fineTuneAt && { fineTuneAt: flags.fineTuneAt }),
        ...(flags.epochs1 !== undefined && { phase1: { epochs: flags.epochs1 } }),
        ...(flags.epochs2 !== undefined && { phase2: { epochs: flags.epochs2 } }),
        ...(flags.rounds !== undefined && { rounds: flags.rounds }),
        ...(flags.views !== undefined && { views: flags.views }),
        ...(flags.dropout !== undefined && { dropout: flags.dropout }),
        ...(flags.labelSmoothing !== undefined && { labelSmoothing: flags.labelSmoothing }),
        ...(flags.mixup !== undefined && { mixup: flags.mixup }),
        ...(flags.averageLast !== undefined && { averageLast: flags.averageLast }),
        ...(flags.pretrain && { pretrain: flags.pretrain }),
        ...(flags.workers !== undefined && { workers: flags.workers }),
        ...(flags.refit !== undefined && { refit: flags.refit }),
      },
    };
    // A resumed run reads the config it started with; flags given with --resume are ignored.
    const { config, datasetDir, cache } = flags.resume ? context({ ...flags, config: join(resolve(flags.resume), 'config.json') }) : context(flags, overrides);
    const started = performance.now();
    const stages: StageData[] = [];
    if (config.train.pretrain) {
      const dir = join(resolveDataRoot(flags.data), config.train.pretrain);
      let records: ImageRecord[];
      try {
        records = listImages(dir, config.train.pretrainDir, config.data.classes);
      } catch (error) {
        throw new DatasetError(`pre-training dataset: ${(error as Error).message}`);
      }
      stages.push({ ...stageFrom(config.train.pretrain, records, await splitTrainingImages(records, dir, { ...config, split: 'ordered', folds: 0 }, cache, { dataset: config.train.pretrain })), pretraining: true });
    }
    const records = listSplit(datasetDir, 'train', config);
    const manifest = await splitTrainingImages(records, datasetDir, config, cache);
    stages.push(stageFrom(config.data.dataset, records, manifest));
    if (flags.resume) verifyResumedSplit(resolve(flags.resume), manifest);
    const out = resolve(flags.resume ?? flags.out ?? join(config.train.runsDir, `${config.train.backbone}-${new Date().toISOString().replace(/[:.]/g, '-')}`));

    let interrupted = false;
    const onSigint = () => {
      if (interrupted) process.exit(130);
      interrupted = true;
      console.error('\ninterrupted: finishing this epoch, then saving the best weights so far (Ctrl-C again to quit now)');
    };
    process.on('SIGINT', onSigint);
    let positions = schedulePositions(stages, config);
    // ETA from each stage's and phase's own pace: a phase-1 epoch (head only) costs a fraction of a phase-2 epoch,
    // a pre-training epoch several main ones.
    const pace = new Map<string, { seconds: number; epochs: number }>();
    const rate = (key: string, phase: 1 | 2): number => {
      const own = pace.get(key) ?? [...pace].find(([k]) => k.endsWith(` ${phase}`))?.[1];
      if (own) return own.seconds / own.epochs;
      const phase1 = [...pace].find(([k]) => k.endsWith(' 1'))?.[1];
      return phase1 ? (phase1.seconds / phase1.epochs) * 10 : 0;
    };
    const eta = (index: number) => positions.slice(index + 1).reduce((sum, p) => sum + rate(`${stages[p.stage]!.name} ${p.phase}`, p.phase), 0);
    try {
      const result = await trainModel(config, cache, {
        out,
        manifest,
        stages,
        log: (line) => console.log(line),
        shouldStop: () => interrupted,
        // A live bar on a terminal only; logs and pipes get the one line per epoch.
        onBatch: process.stderr.isTTY
          ? (batch, batches) => {
              const width = 30;
              const filled = Math.round((batch / batches) * width);
              process.stderr.write(`\r  [${'='.repeat(filled)}${' '.repeat(width - filled)}] batch ${batch}/${batches}${batch === batches ? '\r\x1b[K' : ''}`);
            }
          : undefined,
        resume: Boolean(flags.resume),
        onRefit: (stopAfter, images) => {
          positions = schedulePositions(stages, config, stopAfter);
          console.log(`refit: training again on ${images} images (training + validation) up to round ${stopAfter.round} phase ${stopAfter.phase} epoch ${stopAfter.epoch}, the epoch chosen on validation; validation figures below are in-sample`);
        },
        onEpoch: ({ stage, phase, round, epoch, epochs, record, seconds }) => {
          const key = `${stage} ${phase}`;
          const spent = pace.get(key) ?? { seconds: 0, epochs: 0 };
          pace.set(key, { seconds: spent.seconds + seconds, epochs: spent.epochs + 1 });
          const stageIndex = stages.findIndex((s) => s.name === stage);
          const index = positions.findIndex((p) => samePosition(p, { stage: stageIndex, round, phase, epoch }));
          const t = record.train;
          const v = record.val!;
          console.log(
            `[${String(index + 1).padStart(3)}/${positions.length}] ${stage} round ${round} phase ${phase} epoch ${epoch}/${epochs}` +
              ` | train loss ${t.loss.toFixed(4)} acc ${t.accuracy.toFixed(3)} I ${t.typeI.toFixed(3)} II ${t.typeII.toFixed(3)}` +
              ` | val loss ${v.loss.toFixed(4)} acc ${v.accuracy.toFixed(3)} I ${v.typeI.toFixed(3)} II ${v.typeII.toFixed(3)} | ${seconds.toFixed(1)} s, ETA ${eta(index).toFixed(0)} s`,
          );
        },
      });
      for (const failure of result.failures) console.error(`skipped ${failure.message}`);
      if (result.stoppedEarly) console.error(`covid-ct: ${result.stoppedEarly}`);
      const v = result.card.validation;
      const from = result.card.refit ? `, from the selection run in ${join(result.dir, result.card.refit.selection)}` : '';
      console.log(`model saved to ${result.dir} (threshold ${result.card.threshold.toFixed(4)}, validation accuracy ${v.accuracy!.toFixed(3)}, sensitivity ${v.sensitivity!.toFixed(3)}, specificity ${v.specificity!.toFixed(3)}${from})`);
      console.log(`training wall time ${((performance.now() - started) / 1000).toFixed(1)} s`);
      if (result.stoppedEarly) {
        process.exitCode = interrupted ? 130 : 1;
        return;
      }
      if (flags.evaluate) {
        const report = await evaluateModel(result.dir, { config, datasetDir, cache });
        console.log(headlineText(report.evaluation));
        console.log(`report: ${report.written.html}`);
        console.log(`total wall time ${((performance.now() - started) / 1000).toFixed(1)} s`);
      }
    } finally {
      process.off('SIGINT', onSigint);
    }
  });
}

/** A resumed run must see the same files, in the same split, as the run it continues. */
function verifyResumedSplit(dir: string, manifest: SplitManifest): void {
  const saved = JSON.parse(readFileSync(join(dir, 'split.json'), 'utf8')) as SplitManifest;
  const key = (m: SplitManifest) => JSON.stringify(m.entries.map((e) => [e.path, e.sha256, e.split]));
  if (key(saved) !== key(manifest)) throw new DatasetError(`--resume: the training data or its split changed since ${dir}/split.json was written`);
}

export function evaluateCommand(): Command {
  return addModelFlags(addCommonFlags(
    new Command('evaluate')
      .description("evaluate a saved model or ensemble on the test folder with the model's own threshold; writes report.html and metrics.json")
      .requiredOption('--model <dir>', 'model directory written by train or ensemble')
      .option('--images <dir>', "evaluate on this folder of class subfolders instead of the dataset's test folder (--data <dir> too, when <dir> holds the class folders)")
      .addOption(new Option('--split <split>', "'val': the model's own validation images (from its split.json) instead of the test folder").choices(EVALUATION_SPLITS as EvaluationSplit[]))
      .option('--metadata <file>', 'metadata.csv for patient-level and per-source results (default: the one in the evaluated folder or a parent, up to the data root)')
      .option('--patient-top-k <k>', 'patient score = mean of the k highest slice probabilities (default 5)', integer('--patient-top-k'))
      .option('--source-column <name>', "per-source results by this column of metadata.csv or provenance.csv (default 'source')")
      .option('--out <dir>', 'report folder (default <model>/evaluation)'),
  )).action(async (flags: CommonFlags & { model: string; out?: string; images?: string; split?: EvaluationSplit; metadata?: string; patientTopK?: number; sourceColumn?: string }) => {
    // `--data PATH` naming a folder of class subfolders (not a folder of datasets) is evaluated as `--images PATH`;
    // the model's own dataset is then looked for where it is without --data.
    const dataAsImages = flags.data !== undefined && flags.images === undefined && holdsClassFolders(resolve(flags.data), resolveConfig({}, flags.config).data.classes);
    const images = dataAsImages ? resolve(flags.data!) : flags.images && resolve(flags.images);
    if (dataAsImages) console.log(`--data ${images}: a folder of class subfolders, evaluated as --images`);
    const ctx = context(dataAsImages ? { ...flags, data: undefined } : flags, {
      evaluate: {
        ...(flags.patientTopK !== undefined && { patientTopK: flags.patientTopK }),
        ...(flags.sourceColumn !== undefined && { sourceColumn: flags.sourceColumn }),
      },
    });
    const report = await evaluateModel(resolve(flags.model), ctx, flags.out ? resolve(flags.out) : undefined, {
      images,
      ...(flags.split && { split: flags.split }),
      ...(flags.tta && { tta: flags.tta }),
      metadata: flags.metadata && resolve(flags.metadata),
    });
    console.log(headlineText(report.evaluation));
    console.log(cohortHeadline(report.cohorts));
    console.log(`report: ${report.written.html}`);
  });
}

export function ensembleCommand(): Command {
  return new Command('ensemble')
    .description('average several models; the threshold is chosen on their validation scores (averaged over a shared split, or pooled)')
    .requiredOption('--models <dirs...>', 'member model directories (two or more)')
    .requiredOption('--out <dir>', 'ensemble directory: usable wherever a model directory is')
    .addOption(
      new Option('--validation <how>', "'shared': members validated on the same images, scores averaged; 'pooled': members trained on different splits, each scoring its own held-out images")
        .choices(ENSEMBLE_VALIDATIONS as EnsembleValidation[])
        .default('shared'),
    )
    .action(async (flags: { models: string[]; out: string; validation: EnsembleValidation }) => {
      const card = await createEnsemble(flags.models, resolve(flags.out), flags.validation);
      const v = card.validation;
      console.log(`ensemble of ${flags.models.length} saved to ${resolve(flags.out)} (threshold ${card.threshold.toFixed(4)}, validation AUC ${v.auc!.toFixed(3)}, accuracy ${v.accuracy!.toFixed(3)})`);
    });
}
