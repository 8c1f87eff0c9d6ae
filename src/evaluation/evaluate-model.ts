/** `evaluate`: a saved model on the test folder, with the threshold it chose on validation, into a report. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/index.ts';
import type { ImageCache } from '../data/cache.ts';
import { listSplit } from '../data/dataset.ts';
import { DatasetError } from '../data/errors.ts';
import { loadImages } from '../data/loader.ts';
import { loadModel } from '../inference/model.ts';
import type { LoadModelOptions } from '../inference/model.ts';
import type { Evaluation } from './evaluate.ts';
import { evaluatePredictions } from './evaluate.ts';
import type { EpochRecord } from './plots.ts';
import type { WrittenReport } from './report.ts';
import { writeEvaluationReport } from './report.ts';

export interface ModelEvaluation {
  evaluation: Evaluation;
  written: WrittenReport;
  failures: string[];
}

export async function evaluateModel(
  modelDir: string,
  ctx: { config: Config; datasetDir: string; cache: ImageCache },
  out = join(modelDir, 'evaluation'),
  options: LoadModelOptions = {},
): Promise<ModelEvaluation> {
  const model = await loadModel(modelDir, options);
  try {
    const { config, datasetDir, cache } = ctx;
    const records = listSplit(datasetDir, 'test', config);
    const { images, failures } = await loadImages(records, cache, { size: model.card.imageSize, strict: config.data.strict });
    if (images.length === 0) throw new DatasetError(`no readable test images in ${datasetDir}`);
    const probabilities = await model.predict(images);
    const predictions = images.map((image, i) => ({ path: image.record.path, label: image.record.label, probability: probabilities[i]! }));
    const positive = config.data.classes.find((c) => c.label === 1)!.name;
    const negative = config.data.classes.find((c) => c.label === 0)!.name;
    const evaluation = evaluatePredictions(predictions, { threshold: model.card.threshold, classNames: [negative, positive], bootstrap: { seed: config.seed } });
    const historyFile = join(modelDir, 'history.json');
    const history = existsSync(historyFile) ? (JSON.parse(readFileSync(historyFile, 'utf8')) as EpochRecord[]) : undefined;
    const written = await writeEvaluationReport(out, evaluation, {
      history,
      title: `covid-ct evaluation: ${model.card.id}`,
      details: {
        model: `${model.card.id} (${modelDir})`,
        backbone: `${model.card.backbone.name}, fine-tuned from ${model.card.backbone.fineTuneAt}`,
        threshold: `${model.card.threshold.toFixed(4)} (${model.card.thresholdRule})`,
        'test-time augmentation': options.tta ?? 'none',
        'test folder': join(datasetDir, config.data.testDir),
        'unreadable test images': failures.length ? failures.map((f) => f.message).join('; ') : 'none',
      },
    });
    return { evaluation, written, failures: failures.map((f) => f.message) };
  } finally {
    await model.dispose();
  }
}
