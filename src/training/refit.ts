/**
 * Refit (train.refit): the usual run chooses the epoch on validation and is saved in `<out>/selection`; a second
 * run with the same seed and schedule then trains the last stage on the training and validation images together
 * and stops after the chosen epoch. The refit model keeps the selection run's threshold and validation figures,
 * the only honest ones (its own validation images were trained on).
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/index.ts';
import type { ImageCache } from '../data/cache.ts';
import type { ModelCard } from '../inference/model.ts';
import type { SchedulePosition } from './checkpoint.ts';
import { Checkpoint, samePosition } from './checkpoint.ts';
import { schedulePositions, train, TrainingError } from './train.ts';
import type { TrainOptions, TrainResult, TrunkMemo } from './train.ts';

/** Where a refit keeps its selection run, inside its own directory. */
const SELECTION_DIR = 'selection';

export interface ModelTrainingOptions extends Omit<TrainOptions, 'refit'> {
  /** Called when a refit's second run starts: where it will stop and on how many images. */
  onRefit?: (stopAfter: SchedulePosition, images: number) => void;
}

/** Trains as `config.train.refit` says: one run, or a selection run then its refit. */
export async function trainModel(config: Config, cache: ImageCache, options: ModelTrainingOptions): Promise<TrainResult> {
  const { onRefit, ...trainOptions } = options;
  if (!config.train.refit) return train(config, cache, trainOptions);
  const { out } = options;
  const selectionDir = join(out, SELECTION_DIR);
  // Written first, so a refit stopped during its selection run can be resumed from `out` like any run.
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  await writeFile(join(out, 'split.json'), `${JSON.stringify(options.manifest, null, 2)}\n`);

  // An interrupted selection run saves a model too: it is done only when its checkpoint reached the schedule's end.
  const end = schedulePositions(options.stages, config).at(-1);
  const reached = new Checkpoint(selectionDir).state()?.position;
  const selectionDone = existsSync(join(selectionDir, 'model.json')) && end !== undefined && reached !== undefined && samePosition(reached, end);
  let card: ModelCard;
  // The refit's last stage trains on the selection run's images first (then its validation images), so their views'
  // trunk activations carry over when both runs happen in this process.
  const trunkMemo: TrunkMemo = new Map();
  if (selectionDone && options.resume) {
    card = JSON.parse(readFileSync(join(selectionDir, 'model.json'), 'utf8')) as ModelCard;
  } else {
    const selection = await train(config, cache, { ...trainOptions, out: selectionDir, trunkMemo });
    if (selection.stoppedEarly) return selection;
    card = selection.card;
  }
  const last = options.stages.length - 1;
  const kept = card.checkpoint;
  const stage = options.stages[last]!;
  if (kept?.stage !== stage.name) throw new TrainingError(`refit: ${selectionDir}/model.json names no epoch of stage '${stage.name}' to stop at`);
  const stopAfter: SchedulePosition = { stage: last, round: kept.round, phase: kept.phase, epoch: kept.epoch };
  const stages = [...options.stages.slice(0, last), { ...stage, train: [...stage.train, ...stage.val] }];
  onRefit?.(stopAfter, stages[last]!.train.length);
  // Resume the refit only if it had started. A fresh one starts its last stage from the weights the selection run's
  // pre-training ended with: the stages before the last see the same images and seeds, so they would end the same.
  const resume = Boolean(options.resume) && new Checkpoint(out).exists();
  const stageEnd = last > 0 && !resume ? Checkpoint.stageEnd(selectionDir, last - 1) : undefined;
  return train(config, cache, {
    ...trainOptions,
    stages,
    resume,
    trunkMemo,
    ...(stageEnd?.exists() && { startFrom: stageEnd }),
    refit: { stopAfter, selection: { dir: selectionDir, card } },
  });
}
