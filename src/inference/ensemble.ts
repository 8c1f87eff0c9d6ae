/**
 * Ensembles: member models' probabilities averaged, the threshold chosen by Youden's J on validation scores:
 * by default the members' shared validation images, their scores averaged; with validation 'pooled', members
 * trained on different splits (e.g. `--split patient --seed N`) each score only their own validation images
 * (which that member never trained on), an image held out by several members getting the mean of theirs. The
 * ensemble directory is a model directory like any other, so evaluate, predict and serve load it through loadModel.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { confusionFromPredictions, predict, ratesFromCounts, rocAuc, youdenThreshold } from '../evaluation/metrics.ts';
import type { ModelCard } from './model.ts';
import { DISCLAIMER, ENSEMBLE_FORMAT, ModelError } from './model.ts';

interface ValidationRow {
  path: string;
  label: number;
  probability: number;
}

async function readJson<T>(file: string): Promise<T> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (error) {
    throw new ModelError(`${file}: ${(error as Error).message}`);
  }
}

/** Averages validation rows of several members; they must score exactly the same images. */
export function averageValidation(members: ReadonlyArray<{ dir: string; rows: ValidationRow[] }>): ValidationRow[] {
  const [first, ...rest] = members;
  if (!first) throw new ModelError('an ensemble needs at least one member');
  const key = (rows: ValidationRow[]) => rows.map((r) => `${r.path}\t${r.label}`).sort().join('\n');
  for (const member of rest) {
    if (key(member.rows) !== key(first.rows)) {
      throw new ModelError(`${member.dir} was validated on other images than ${first.dir}: ensemble members must share their validation split (same data, split method and seed), or the ensemble must pool their validation scores (--validation pooled)`);
    }
  }
  const sums = new Map(first.rows.map((r) => [r.path, 0]));
  for (const member of members) for (const r of member.rows) sums.set(r.path, sums.get(r.path)! + r.probability / members.length);
  return first.rows.map((r) => ({ path: r.path, label: r.label, probability: sums.get(r.path)! }));
}

/**
 * Pools the validation rows of members validated on different images: each image scored by the members that
 * held it out, averaged over them. An image with two labels means the members come from different data.
 */
export function poolValidation(members: ReadonlyArray<{ dir: string; rows: ValidationRow[] }>): ValidationRow[] {
  const pooled = new Map<string, { label: number; sum: number; count: number; dir: string }>();
  for (const member of members) {
    for (const r of member.rows) {
      const seen = pooled.get(r.path);
      if (!seen) {
        pooled.set(r.path, { label: r.label, sum: r.probability, count: 1, dir: member.dir });
        continue;
      }
      if (seen.label !== r.label) throw new ModelError(`${r.path} is labelled ${r.label} by ${member.dir} and ${seen.label} by ${seen.dir}: ensemble members must come from the same data`);
      seen.sum += r.probability;
      seen.count++;
    }
  }
  return [...pooled].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([path, p]) => ({ path, label: p.label, probability: p.sum / p.count }));
}

/** How an ensemble's threshold is chosen: on the members' shared validation images, or on their pooled own ones. */
export type EnsembleValidation = 'shared' | 'pooled';
export const ENSEMBLE_VALIDATIONS: readonly EnsembleValidation[] = ['shared', 'pooled'];

const THRESHOLD_RULES: Record<EnsembleValidation, string> = {
  shared: "Youden's J on the members' averaged validation scores",
  pooled: "Youden's J on the members' pooled validation scores (each image scored by the members that held it out)",
};

export async function createEnsemble(memberDirs: readonly string[], out: string, validation: EnsembleValidation = 'shared'): Promise<ModelCard> {
  if (!ENSEMBLE_VALIDATIONS.includes(validation)) throw new ModelError(`validation must be one of ${ENSEMBLE_VALIDATIONS.join(', ')}, got '${validation}'`);
  if (memberDirs.length < 2) throw new ModelError(`an ensemble needs at least two members, got ${memberDirs.length}`);
  const members = await Promise.all(
    memberDirs.map(async (dir) => {
      const card = await readJson<ModelCard>(join(dir, 'model.json'));
      // A refit has no held-out images of its own to choose an ensemble's threshold on.
      if (card.refit) throw new ModelError(`${dir} is a refit (trained on its validation images too): ensemble members need held-out validation scores; give its selection run ${join(dir, card.refit.selection)} or a model trained with --no-refit`);
      return { dir: resolve(dir), card, rows: await readJson<ValidationRow[]>(join(dir, 'validation-predictions.json')) };
    }),
  );
  const rows = validation === 'pooled' ? poolValidation(members) : averageValidation(members);
  const labels = rows.map((r) => r.label);
  const probabilities = rows.map((r) => r.probability);
  const choice = youdenThreshold(labels, probabilities);
  const rates = ratesFromCounts(confusionFromPredictions(labels, predict(probabilities, choice.threshold)));
  const first = members[0]!.card;
  const card: ModelCard = {
    format: ENSEMBLE_FORMAT,
    id: `ensemble-${new Date().toISOString().replace(/[:.]/g, '-')}`,
    createdAt: new Date().toISOString(),
    backbone: { ...first.backbone, name: `ensemble of ${members.length}: ${members.map((m) => m.card.backbone.name).join(', ')}` },
    imageSize: first.imageSize,
    preprocess: first.preprocess,
    threshold: choice.threshold,
    thresholdRule: THRESHOLD_RULES[validation],
    classes: first.classes,
    validation: { accuracy: rates.accuracy, sensitivity: rates.sensitivity, specificity: rates.specificity, youdenJ: choice.j, auc: rocAuc(labels, probabilities), images: rows.length },
    seed: first.seed,
    disclaimer: DISCLAIMER,
    members: members.map((m) => relative(resolve(out), m.dir)),
  };
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'model.json'), `${JSON.stringify(card, null, 2)}\n`);
  await writeFile(join(out, 'validation-predictions.json'), `${JSON.stringify(rows, null, 2)}\n`);
  return card;
}
