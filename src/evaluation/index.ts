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
export { evaluatePredictions, galleryExamples, evaluationToJson, headlineText, DEFAULT_CLASS_NAMES } from './evaluate.ts';
export type { PredictionRecord, ScoredPrediction, Outcome, EvaluateOptions, Evaluation } from './evaluate.ts';
export { rocFigureSvg, confusionMatrixSvg, trainingHistorySvg, svgToPng } from './plots.ts';
export type { RocFigureOptions, EpochMetrics, EpochRecord } from './plots.ts';
export {
  DISCLAIMER,
  THUMBNAIL_SIZE,
  makeThumbnail,
  dataUri,
  reportFigures,
  renderReportHtml,
  writeMetricsJson,
  writeFigure,
  writeEvaluationReport,
} from './report.ts';
export type { Thumbnail, ReportOptions, ReportFigures, WrittenReport } from './report.ts';
