/** Evaluation: metrics, figures and the self-contained report. Pure and model-independent. */
export {
  MetricError,
  predict,
  confusionFromPredictions,
  ratesFromCounts,
  metricsAtThreshold,
  rocCurve,
  rocAuc,
  trapezoidArea,
  youdenThreshold,
  bootstrapAucCi,
  percentile,
} from './metrics.ts';
export type {
  Label,
  ConfusionCounts,
  ThresholdMetrics,
  RocCurve,
  YoudenChoice,
  BootstrapOptions,
  AucInterval,
} from './metrics.ts';
export { classificationReport, formatFixed } from './classification-report.ts';
export type { ClassificationReport, ReportRow } from './classification-report.ts';
