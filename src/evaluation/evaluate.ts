/** Everything the report shows, computed once from per-image predictions and a decision threshold. */
import type { AucInterval, BootstrapOptions, Label, RocCurve, ThresholdMetrics } from './metrics.ts';
import { bootstrapAucCi, MetricError, metricsAtThreshold, predict, rocCurve } from './metrics.ts';
import type { ClassificationReport } from './classification-report.ts';
import { classificationReport, formatFixed } from './classification-report.ts';

export interface PredictionRecord {
  path: string;
  /** 1 = positive class (COVID). */
  label: number;
  /** Probability of the positive class. */
  probability: number;
}

export type Outcome = 'TP' | 'TN' | 'FP' | 'FN';

export interface ScoredPrediction extends PredictionRecord {
  predicted: Label;
  outcome: Outcome;
}

export interface EvaluateOptions {
  /** Decision threshold: positive when probability >= threshold. Use the one chosen on validation. */
  threshold: number;
  /** Names of label 0 and label 1. */
  classNames?: readonly [string, string];
  bootstrap?: BootstrapOptions;
  digits?: number;
}

export interface Evaluation {
  classNames: readonly [string, string];
  threshold: number;
  size: number;
  positives: number;
  negatives: number;
  /** Counts and rates at the threshold. */
  metrics: ThresholdMetrics;
  /** ROC AUC with its bootstrap confidence interval. */
  auc: AucInterval;
  roc: RocCurve;
  report: ClassificationReport;
  predictions: ScoredPrediction[];
}

export const DEFAULT_CLASS_NAMES = ['NonCOVID', 'COVID'] as const;

/**
 * Evaluates predictions at a fixed threshold. Throws MetricError for an empty or single-class set, where AUC is
 * undefined.
 */
export function evaluatePredictions(records: readonly PredictionRecord[], options: EvaluateOptions): Evaluation {
  const { threshold, classNames = DEFAULT_CLASS_NAMES, bootstrap, digits = 2 } = options;
  if (!Number.isFinite(threshold)) throw new MetricError(`threshold must be a finite number, got ${threshold}`);
  const labels = records.map((r) => r.label);
  const probabilities = records.map((r) => r.probability);
  const auc = bootstrapAucCi(labels, probabilities, bootstrap); // validates and rejects empty/single-class sets
  const roc = rocCurve(labels, probabilities);
  const metrics = metricsAtThreshold(labels, probabilities, threshold);
  const predicted = predict(probabilities, threshold);
  const report = classificationReport(labels, predicted, [classNames[0], classNames[1]], digits);
  const predictions = records.map((record, i): ScoredPrediction => {
    const p = predicted[i]!;
    const outcome: Outcome = record.label === 1 ? (p === 1 ? 'TP' : 'FN') : p === 1 ? 'FP' : 'TN';
    return { path: record.path, label: record.label, probability: record.probability, predicted: p, outcome };
  });
  const positives = metrics.tp + metrics.fn;
  return {
    classNames,
    threshold,
    size: records.length,
    positives,
    negatives: records.length - positives,
    metrics,
    auc,
    roc,
    report,
    predictions,
  };
}

/**
 * Up to `limit` examples of an outcome, the most confident first: TP and FP by descending probability (FP: the most
 * confident mistakes), TN and FN by ascending probability; ties by path.
 */
export function galleryExamples(predictions: readonly ScoredPrediction[], outcome: Outcome, limit = 9): ScoredPrediction[] {
  const descending = outcome === 'TP' || outcome === 'FP';
  return predictions
    .filter((p) => p.outcome === outcome)
    .sort((a, b) => (descending ? b.probability - a.probability : a.probability - b.probability) || a.path.localeCompare(b.path))
    .slice(0, limit);
}

/** Plain-JSON form of an evaluation: every number, the CI, threshold, counts and per-image predictions. */
export function evaluationToJson(evaluation: Evaluation, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const { metrics, auc, roc, report } = evaluation;
  const rowTotals = [metrics.tn + metrics.fp, metrics.fn + metrics.tp];
  const rowNormalise = (count: number, total: number) => (total === 0 ? null : count / total);
  return {
    ...extra,
    classNames: evaluation.classNames,
    threshold: evaluation.threshold,
    thresholdRule: 'positive when probability >= threshold',
    size: evaluation.size,
    positives: evaluation.positives,
    negatives: evaluation.negatives,
    counts: { tp: metrics.tp, fp: metrics.fp, tn: metrics.tn, fn: metrics.fn },
    confusionMatrix: {
      rows: 'true class (label 0, label 1)',
      columns: 'predicted class (label 0, label 1)',
      counts: [
        [metrics.tn, metrics.fp],
        [metrics.fn, metrics.tp],
      ],
      rowNormalised: [
        [rowNormalise(metrics.tn, rowTotals[0]!), rowNormalise(metrics.fp, rowTotals[0]!)],
        [rowNormalise(metrics.fn, rowTotals[1]!), rowNormalise(metrics.tp, rowTotals[1]!)],
      ],
    },
    accuracy: metrics.accuracy,
    sensitivity: metrics.sensitivity,
    specificity: metrics.specificity,
    typeI: metrics.typeI,
    typeII: metrics.typeII,
    auc: auc.auc,
    aucCi: {
      low: auc.low,
      high: auc.high,
      level: auc.level,
      method: auc.method,
      resamples: auc.resamples,
      skippedSingleClass: auc.skipped,
      seed: auc.seed,
    },
    classificationReport: {
      classes: report.classes,
      accuracy: report.accuracy,
      macroAvg: report.macroAvg,
      weightedAvg: report.weightedAvg,
      undefinedMetricsSetToZero: report.undefinedMetrics,
      text: report.text,
    },
    roc: {
      fpr: roc.fpr,
      tpr: roc.tpr,
      // JSON has no Infinity: the first threshold (+Infinity, the point (0, 0)) is written as null.
      thresholds: roc.thresholds.map((t) => (Number.isFinite(t) ? t : null)),
    },
    predictions: evaluation.predictions,
  };
}

/** One line of headline figures for a terminal, e.g. after `covid-ct evaluate`. */
export function headlineText(evaluation: Evaluation): string {
  const { metrics, auc } = evaluation;
  const f = (v: number) => formatFixed(v, 3);
  return (
    `accuracy ${f(metrics.accuracy)}, AUC ${f(auc.auc)} (${Math.round(auc.level * 100)}% CI ${f(auc.low)}-${f(auc.high)}), ` +
    `sensitivity ${f(metrics.sensitivity)}, specificity ${f(metrics.specificity)}, threshold ${formatFixed(evaluation.threshold, 4)} ` +
    `(n = ${evaluation.size})`
  );
}
