/**
 * scikit-learn's `classification_report(y_true, y_pred, labels=[0, 1], target_names=[...], digits=2)` for binary
 * labels: the same numbers (definitions of sklearn >= 1.3) and the same text, character for character.
 */
import { confusionFromPredictions, MetricError } from './metrics.ts';

export interface ReportRow {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface ClassificationReport {
  /** Per class, in label order 0, 1, keyed by target name. */
  classes: Array<ReportRow & { name: string }>;
  accuracy: number;
  macroAvg: ReportRow;
  weightedAvg: ReportRow;
  /**
   * Metrics that were undefined (0/0) and set to 0.0, as sklearn's default `zero_division="warn"` does; sklearn
   * warns for each, e.g. "precision of COVID". Empty when every metric was defined.
   */
  undefinedMetrics: string[];
  /** The text layout of sklearn's report. */
  text: string;
}

/**
 * Python's `format(x, '.{digits}f')`: like toFixed but exact halves round to even (0.125 -> "0.12"), because Python
 * rounds the exact binary value half-to-even where toFixed rounds halves up.
 */
export function formatFixed(value: number, digits: number): string {
  const rounded = value.toFixed(digits);
  // Enough digits to see the exact decimal expansion of any double that could be a tie at `digits`.
  const exact = Math.abs(value).toFixed(Math.min(100, digits + 40));
  const cut = exact.indexOf('.') + 1 + digits;
  if (!/^50*$/.test(exact.slice(cut))) return rounded;
  const truncated = exact.slice(0, digits === 0 ? cut - 1 : cut);
  const lastDigit = Number(truncated.charAt(truncated.length - 1));
  if (lastDigit % 2 === 1) return rounded; // toFixed rounded the half up, which is the even neighbour
  return (value < 0 ? '-' : '') + truncated;
}

function rightAlign(text: string, width: number): string {
  return text.padStart(width, ' ');
}

/** sklearn's _prf_divide with zero_division=0: 0/0 is 0 and is recorded. */
function divide(numerator: number, denominator: number, metric: string, undefinedMetrics: string[]): number {
  if (denominator === 0) {
    undefinedMetrics.push(metric);
    return 0;
  }
  return numerator / denominator;
}

export function classificationReport(
  labels: readonly number[],
  predictions: readonly number[],
  targetNames: readonly [string, string] = ['0', '1'],
  digits = 2,
): ClassificationReport {
  if (labels.length === 0) throw new MetricError('the classification report is undefined for an empty set');
  if (!Number.isInteger(digits) || digits < 0 || digits > 20) throw new MetricError(`digits must be 0..20`);
  const { tp, fp, tn, fn } = confusionFromPredictions(labels, predictions);
  const undefinedMetrics: string[] = [];

  // Class 1 counts as (tp, fp, fn); class 0 sees the mirror image.
  const perClass = [
    { name: targetNames[0], tp: tn, predicted: tn + fn, actual: tn + fp },
    { name: targetNames[1], tp, predicted: tp + fp, actual: tp + fn },
  ].map(({ name, tp: hits, predicted, actual }) => ({
    name,
    precision: divide(hits, predicted, `precision of ${name}`, undefinedMetrics),
    recall: divide(hits, actual, `recall of ${name}`, undefinedMetrics),
    // sklearn >= 1.3 computes F1 from counts, 2tp / (2tp + fp + fn), undefined only when that denominator is 0.
    f1: divide(2 * hits, predicted + actual, `f1-score of ${name}`, undefinedMetrics),
    support: actual,
  }));

  const total = labels.length;
  const accuracy = (tp + tn) / total;
  const mean = (values: number[]) => values.reduce((sum, v) => sum + v, 0) / values.length;
  const weighted = (values: number[]) =>
    values.reduce((sum, v, i) => sum + v * perClass[i]!.support, 0) / total;
  const column = (key: 'precision' | 'recall' | 'f1') => perClass.map((row) => row[key]);
  const macroAvg: ReportRow = {
    precision: mean(column('precision')),
    recall: mean(column('recall')),
    f1: mean(column('f1')),
    support: total,
  };
  const weightedAvg: ReportRow = {
    precision: weighted(column('precision')),
    recall: weighted(column('recall')),
    f1: weighted(column('f1')),
    support: total,
  };

  // Layout of sklearn.metrics.classification_report (text branch).
  const width = Math.max(...targetNames.map((name) => name.length), 'weighted avg'.length, digits);
  const number = (value: number) => ' ' + rightAlign(formatFixed(value, digits), 9);
  const row = (heading: string, r: ReportRow) =>
    rightAlign(heading, width) + ' ' + number(r.precision) + number(r.recall) + number(r.f1) +
    ' ' + rightAlign(String(r.support), 9) + '\n';
  let text = rightAlign('', width) + ' ' + ['precision', 'recall', 'f1-score', 'support'].map((h) => ' ' + rightAlign(h, 9)).join('');
  text += '\n\n';
  for (const r of perClass) text += row(r.name, r);
  text += '\n';
  text += rightAlign('accuracy', width) + ' ' + ' ' + rightAlign('', 9) + ' ' + rightAlign('', 9) + number(accuracy) +
    ' ' + rightAlign(String(total), 9) + '\n';
  text += row('macro avg', macroAvg);
  text += row('weighted avg', weightedAvg);

  return { classes: perClass, accuracy, macroAvg, weightedAvg, undefinedMetrics, text };
}
