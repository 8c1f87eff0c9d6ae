import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, Option } from 'commander';
import type { Config, DeepPartial, IntensityMode } from '../config/index.ts';
import { INTENSITY_MODES, resolveDataRoot } from '../config/index.ts';
import { listImages, listSplit } from '../data/dataset.ts';
import type { ImageRecord } from '../data/dataset.ts';
import { DatasetError } from '../data/errors.ts';
import { splitTrainingImages } from '../data/split.ts';
import type { SplitManifest } from '../data/split.ts';
import { headlineText } from '../evaluation/evaluate.ts';
import { evaluateModel, EVALUATION_SPLITS } from '../evaluation/evaluate-model.ts';
import type { EvaluationSplit } from '../evaluation/evaluate-model.ts';
import { cohortHeadline } from '../evaluation/cohorts.ts';
import type { StageData } from '../training/train.ts';
import { train } from '../training/train.ts';
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
    const totalEpochs = stages.length * config.train.rounds * (config.train.phase1.epochs + config.train.phase2.epochs);
    let done = 0;
    // ETA from each phase's own pace: a phase-1 epoch (head only) costs a fraction of a phase-2 epoch.
    const pace = { 1: { seconds: 0, epochs: 0 }, 2: { seconds: 0, epochs: 0 } };
    const eta = (stageIndex: number, round: number, phase: 1 | 2, epoch: number) => {
      const perRound = { 1: config.train.phase1.epochs, 2: config.train.phase2.epochs };
      const left = { 1: 0, 2: 0 };
      for (let s = stageIndex; s < stages.length; s++) {
        for (let r = s === stageIndex ? round : 1; r <= config.train.rounds; r++) {
          for (const p of [1, 2] as const) {
            const current = s === stageIndex && r === round;
            if (current && p < phase) continue;
            left[p] += current && p === phase ? perRound[p] - epoch : perRound[p];
          }
        }
      }
      const rate = (p: 1 | 2) => (pace[p].epochs ? pace[p].seconds / pace[p].epochs : pace[1].epochs ? (pace[1].seconds / pace[1].epochs) * 10 : 0);
      return left[1] * rate(1) + left[2] * rate(2);
    };
    try {
      const result = await train(config, cache, {
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
        onEpoch: ({ stage, phase, round, epoch, epochs, record, seconds }) => {
          done++;
          pace[phase].seconds += seconds;
          pace[phase].epochs++;
          const stageIndex = stages.findIndex((s) => s.name === stage);
          const t = record.train;
          const v = record.val!;
          console.log(
            `[${String(done).padStart(3)}/${totalEpochs}] ${stage} round ${round} phase ${phase} epoch ${epoch}/${epochs}` +
              ` | train loss ${t.loss.toFixed(4)} acc ${t.accuracy.toFixed(3)} I ${t.typeI.toFixed(3)} II ${t.typeII.toFixed(3)}` +
              ` | val loss ${v.loss.toFixed(4)} acc ${v.accuracy.toFixed(3)} I ${v.typeI.toFixed(3)} II ${v.typeII.toFixed(3)} | ${seconds.toFixed(1)} s, ETA ${eta(stageIndex, round, phase, epoch).toFixed(0)} s`,
          );
        },
      });
      for (const failure of result.failures) console.error(`skipped ${failure.message}`);
      if (result.stoppedEarly) console.error(`covid-ct: ${result.stoppedEarly}`);
      const v = result.card.validation;
      console.log(`model saved to ${result.dir} (threshold ${result.card.threshold.toFixed(4)}, validation accuracy ${v.accuracy!.toFixed(3)}, sensitivity ${v.sensitivity!.toFixed(3)}, specificity ${v.specificity!.toFixed(3)})`);
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
      .option('--images <dir>', "evaluate on this folder of class subfolders instead of the dataset's test folder")
      .addOption(new Option('--split <split>', "'val': the model's own validation images (from its split.json) instead of the test folder").choices(EVALUATION_SPLITS as EvaluationSplit[]))
      .option('--metadata <file>', 'metadata.csv for patient-level and per-source results (default: the one in the evaluated folder or a parent, up to the data root)')
      .option('--patient-top-k <k>', 'patient score = mean of the k highest slice probabilities (default 5)', integer('--patient-top-k'))
      .option('--source-column <name>', "per-source results by this column of metadata.csv or provenance.csv (default 'source')")
      .option('--out <dir>', 'report folder (default <model>/evaluation)'),
  )).action(async (flags: CommonFlags & { model: string; out?: string; images?: string; split?: EvaluationSplit; metadata?: string; patientTopK?: number; sourceColumn?: string }) => {
    const ctx = context(flags, {
      evaluate: {
        ...(flags.patientTopK !== undefined && { patientTopK: flags.patientTopK }),
        ...(flags.sourceColumn !== undefined && { sourceColumn: flags.sourceColumn }),
      },
    });
    const report = await evaluateModel(resolve(flags.model), ctx, flags.out ? resolve(flags.out) : undefined, {
      images: flags.images && resolve(flags.images),
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
