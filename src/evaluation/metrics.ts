/**
 * Binary classification metrics from labels (0/1) and probabilities, with scikit-learn's definitions.
 * Everything here is pure and model-independent.
 */
import { Rng } from '../data/random.ts';

export type Label = 0 | 1;

/** Thrown when a metric is undefined for the given data (empty set, a single class, bad input). */
export class MetricError extends Error {
  override name = 'MetricError';
}

export interface ConfusionCounts {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

export interface ThresholdMetrics extends ConfusionCounts {
  threshold: number;
  accuracy: number;
  /** TP / (TP + FN), the true positive rate (recall of class 1); 0 when there are no positives. */
  sensitivity: number;
  /** TN / (TN + FP), the true negative rate; 0 when there are no negatives. */
  specificity: number;
  /** FP / (FP + TN), the false positive rate; 0 when there are no negatives. */
  typeI: number;
  /** FN / (FN + TP), the false negative rate; 0 when there are no positives. */
  typeII: number;
}

export interface RocCurve {
  fpr: number[];
  tpr: number[];
  /** Decreasing; the first is +Infinity (the point (0, 0)), as in scikit-learn >= 1.3. */
  thresholds: number[];
}

function validate(labels: readonly number[], scores?: readonly number[]): void {
  if (scores && labels.length !== scores.length) {
    throw new MetricError(`labels (${labels.length}) and scores (${scores.length}) differ in length`);
  }
  labels.forEach((label, i) => {
    if (label !== 0 && label !== 1) throw new MetricError(`label ${i} is ${label}, expected 0 or 1`);
  });
  scores?.forEach((score, i) => {
    if (!Number.isFinite(score)) throw new MetricError(`score ${i} is ${score}, expected a finite number`);
  });
}

function requireBothClasses(labels: readonly number[], what: string): { positives: number; negatives: number } {
  if (labels.length === 0) throw new MetricError(`${what} is undefined for an empty set`);
  const positives = labels.reduce<number>((sum, label) => sum + label, 0);
  const negatives = labels.length - positives;
  if (positives === 0 || negatives === 0) {
    throw new MetricError(
      `${what} is undefined when only one class is present (${positives} positive, ${negatives} negative)`,
    );
  }
  return { positives, negatives };
}

/** Rate with 0 for an empty denominator, so counts over a one-class split never give NaN. */
function rate(numerator: number, denominator: number): number {
  return denominator === 0 ? 0 : numerator / denominator;
}

/**
 * Mean of the k highest values (k capped at the count); the k used is returned with it. The score of a study in
 * `predict` (slices of a series) and of a patient in `evaluate` (a patient's slices).
 */
export function topKMean(values: readonly number[], k: number): { score: number; k: number } {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`top-k: k must be a positive integer, got ${k}`);
  if (values.length === 0) throw new RangeError('top-k: no values');
  const used = Math.min(k, values.length);
  const top = [...values].sort((a, b) => b - a).slice(0, used);
  return { score: top.reduce((a, b) => a + b, 0) / used, k: used };
}

/** Hard predictions: positive when probability >= threshold (the convention of scikit-learn's roc_curve). */
export function predict(probabilities: readonly number[], threshold: number): Label[] {
  return probabilities.map((p) => (p >= threshold ? 1 : 0));
}

export function confusionFromPredictions(labels: readonly number[], predictions: readonly number[]): ConfusionCounts {
  validate(labels, predictions);
  validate(predictions);
  const counts: ConfusionCounts = { tp: 0, fp: 0, tn: 0, fn: 0 };
  labels.forEach((label, i) => {
    const predicted = predictions[i];
    if (label === 1) counts[predicted === 1 ? 'tp' : 'fn']++;
    else counts[predicted === 1 ? 'fp' : 'tn']++;
  });
  return counts;
}

/** Rates from counts; defined (0) for empty denominators so it also serves per-epoch training logs. */
export function ratesFromCounts(counts: ConfusionCounts): Omit<ThresholdMetrics, keyof ConfusionCounts | 'threshold'> {
  const { tp, fp, tn, fn } = counts;
  return {
    accuracy: rate(tp + tn, tp + fp + tn + fn),
    sensitivity: rate(tp, tp + fn),
    specificity: rate(tn, tn + fp),
    typeI: rate(fp, fp + tn),
    typeII: rate(fn, fn + tp),
  };
}

/** Confusion counts and rates at a threshold (positive when probability >= threshold). */
export function metricsAtThreshold(
  labels: readonly number[],
  probabilities: readonly number[],
  threshold = 0.5,
): ThresholdMetrics {
  validate(labels, probabilities);
  if (labels.length === 0) throw new MetricError('metrics are undefined for an empty set');
  const counts = confusionFromPredictions(labels, predict(probabilities, threshold));
  return { threshold, ...counts, ...ratesFromCounts(counts) };
}

/** Cumulative counts at each distinct score, scores descending (scikit-learn's _binary_clf_curve). */
function binaryClfCurve(labels: readonly number[], scores: readonly number[]) {
  const order = scores.map((_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
  const fps: number[] = [];
  const tps: number[] = [];
  const thresholds: number[] = [];
  let tp = 0;
  for (let k = 0; k < order.length; k++) {
    const index = order[k]!;
    tp += labels[index]!;
    const next = order[k + 1];
    if (next === undefined || scores[next] !== scores[index]) {
      tps.push(tp);
      fps.push(k + 1 - tp);
      thresholds.push(scores[index]!);
    }
  }
  return { fps, tps, thresholds };
}

/**
 * ROC curve as scikit-learn's `roc_curve(y_true, y_score, drop_intermediate=False)`: one point per distinct score
 * (ties form a single diagonal step), preceded by (0, 0) at threshold +Infinity.
 */
export function rocCurve(labels: readonly number[], scores: readonly number[]): RocCurve {
  validate(labels, scores);
  const { positives, negatives } = requireBothClasses(labels, 'the ROC curve');
  const curve = binaryClfCurve(labels, scores);
  return {
    fpr: [0, ...curve.fps.map((fp) => fp / negatives)],
    tpr: [0, ...curve.tps.map((tp) => tp / positives)],
    thresholds: [Infinity, ...curve.thresholds],
  };
}

/** Area under a curve by the trapezoid rule, x monotonic (scikit-learn's `auc`). */
export function trapezoidArea(x: readonly number[], y: readonly number[]): number {
  let area = 0;
  for (let i = 1; i < x.length; i++) area += ((x[i]! - x[i - 1]!) * (y[i]! + y[i - 1]!)) / 2;
  return area;
}

/** ROC AUC as scikit-learn's `roc_auc_score` for binary labels: tied scores count one half. */
export function rocAuc(labels: readonly number[], scores: readonly number[]): number {
  const { fpr, tpr } = rocCurve(labels, scores);
  return trapezoidArea(fpr, tpr);
}

export interface YoudenChoice {
  threshold: number;
  /** Youden's J = sensitivity + specificity - 1 = TPR - FPR at that threshold. */
  j: number;
  sensitivity: number;
  specificity: number;
}

/**
 * The ROC threshold maximising Youden's J (predict positive when probability >= threshold). Only finite thresholds
 * (actual scores) are candidates. Ties go to the highest threshold, i.e. the first maximum in ROC order, as
 * `thresholds[argmax(tpr - fpr)]` does: among equally good cut-offs it calls the fewest images positive.
 */
export function youdenThreshold(labels: readonly number[], scores: readonly number[]): YoudenChoice {
  validate(labels, scores);
  const { positives, negatives } = requireBothClasses(labels, "Youden's J");
  const { tps, fps, thresholds } = binaryClfCurve(labels, scores);
  // Compare J * positives * negatives in integers, so equal J values tie exactly instead of by rounding.
  const scaledJ = (i: number) => tps[i]! * negatives - fps[i]! * positives;
  let best = 0;
  for (let i = 1; i < thresholds.length; i++) if (scaledJ(i) > scaledJ(best)) best = i;
  const sensitivity = tps[best]! / positives;
  const specificity = 1 - fps[best]! / negatives;
  return { threshold: thresholds[best]!, j: sensitivity - fps[best]! / negatives, sensitivity, specificity };
}

export interface BootstrapOptions {
  /** Number of resamples drawn (default 2000). */
  resamples?: number;
  /** Seed of the generator (default 0). */
  seed?: number;
  /** Confidence level (default 0.95). */
  level?: number;
}

export interface AucInterval {
  auc: number;
  low: number;
  high: number;
  level: number;
  /** Resamples drawn. */
  resamples: number;
  /** Resamples skipped because they held a single class (AUC undefined); the interval uses the rest. */
  skipped: number;
  seed: number;
  method: 'percentile';
}

/** Percentile with linear interpolation between order statistics (numpy's default), `sorted` ascending. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) throw new MetricError('percentile of an empty list');
  const position = (q / 100) * (sorted.length - 1);
  const below = Math.floor(position);
  const above = Math.min(below + 1, sorted.length - 1);
  const fraction = position - below;
  return sorted[below]! + (sorted[above]! - sorted[below]!) * fraction;
}

function bootstrapSettings(options: BootstrapOptions): Required<BootstrapOptions> {
  const { resamples = 2000, seed = 0, level = 0.95 } = options;
  if (!Number.isInteger(resamples) || resamples < 1) throw new MetricError(`resamples must be a positive integer`);
  if (!(level > 0 && level < 1)) throw new MetricError(`level must be in (0, 1), got ${level}`);
  return { resamples, seed, level };
}

/** The central `level` interval of bootstrap estimates (percentile method); sorts them in place. */
function percentileInterval(estimates: number[], level: number): { low: number; high: number } {
  if (estimates.length === 0) throw new MetricError('every bootstrap resample held a single class');
  estimates.sort((a, b) => a - b);
  const tail = ((1 - level) / 2) * 100;
  return { low: percentile(estimates, tail), high: percentile(estimates, 100 - tail) };
}

/**
 * Bootstrap confidence interval of the ROC AUC: resample the images with replacement, percentile method.
 * Each resample's AUC is computed from per-score counts over one presorting, which equals `rocAuc` on the resample.
 */
export function bootstrapAucCi(
  labels: readonly number[],
  scores: readonly number[],
  options: BootstrapOptions = {},
): AucInterval {
  const { resamples, seed, level } = bootstrapSettings(options);
  const auc = rocAuc(labels, scores);

  // Group images by distinct score, highest first; each image maps to its group.
  const distinct = [...new Set(scores)].sort((a, b) => b - a);
  const groupOf = new Map(distinct.map((score, g) => [score, g]));
  const imageGroup = scores.map((score) => groupOf.get(score)!);
  const n = labels.length;
  const positivesIn = new Float64Array(distinct.length);
  const negativesIn = new Float64Array(distinct.length);

  const rng = new Rng(seed);
  const aucs: number[] = [];
  let skipped = 0;
  for (let r = 0; r < resamples; r++) {
    positivesIn.fill(0);
    negativesIn.fill(0);
    let positives = 0;
    for (let k = 0; k < n; k++) {
      const index = rng.int(n);
      if (labels[index] === 1) {
        positivesIn[imageGroup[index]!]!++;
        positives++;
      } else negativesIn[imageGroup[index]!]!++;
    }
    const negatives = n - positives;
    if (positives === 0 || negatives === 0) {
      skipped++;
      continue;
    }
    // Each negative scores against the positives above it, plus half the positives tied with it.
    let positivesAbove = 0;
    let wins = 0;
    for (let g = 0; g < distinct.length; g++) {
      wins += negativesIn[g]! * (positivesAbove + positivesIn[g]! / 2);
      positivesAbove += positivesIn[g]!;
    }
    aucs.push(wins / (positives * negatives));
  }
  return {
    auc,
    ...percentileInterval(aucs, level),
    level,
    resamples,
    skipped,
    seed,
    method: 'percentile',
  };
}

export interface AucDifference {
  /** AUC of scores A minus AUC of scores B, on the same images. */
  difference: number;
  low: number;
  high: number;
  level: number;
  /** Share of the resamples where A's AUC was not above B's: a one-sided bootstrap p-value for "A is better". */
  atOrBelowZero: number;
  resamples: number;
  skipped: number;
  seed: number;
  method: 'paired percentile';
}

/**
 * Paired bootstrap of the difference between two ROC AUCs on the same images (two models, or two variants
 * scored on the same held-out images): each resample draws images with replacement and scores both on it, so
 * what the images share cancels out and the interval is narrower than the two AUCs' own intervals combined.
 */
export function bootstrapAucDifference(
  labels: readonly number[],
  scoresA: readonly number[],
  scoresB: readonly number[],
  options: BootstrapOptions = {},
): AucDifference {
  const { resamples, seed, level } = bootstrapSettings(options);
  if (scoresA.length !== labels.length || scoresB.length !== labels.length) {
    throw new MetricError(`labels and both score lists must have the same length, got ${labels.length}, ${scoresA.length} and ${scoresB.length}`);
  }
  const difference = rocAuc(labels, scoresA) - rocAuc(labels, scoresB);
  const rng = new Rng(seed);
  const n = labels.length;
  const differences: number[] = [];
  let skipped = 0;
  for (let r = 0; r < resamples; r++) {
    const picked = Array.from({ length: n }, () => rng.int(n));
    const sample = picked.map((i) => labels[i]!);
    if (!sample.includes(1) || !sample.includes(0)) {
      skipped++;
      continue;
    }
    differences.push(rocAuc(sample, picked.map((i) => scoresA[i]!)) - rocAuc(sample, picked.map((i) => scoresB[i]!)));
  }
  return {
    difference,
    ...percentileInterval(differences, level),
    level,
    atOrBelowZero: differences.filter((d) => d <= 0).length / differences.length,
    resamples,
    skipped,
    seed,
    method: 'paired percentile',
  };
}
