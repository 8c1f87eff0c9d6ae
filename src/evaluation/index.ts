/** Evaluation: metrics, figures and the self-contained report; patient-level and per-source results from metadata.csv. Model-independent. */
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
  bootstrapAucDifference,
  percentile,
  topKMean,
} from './metrics.ts';
export type {
  Label,
  ConfusionCounts,
  ThresholdMetrics,
  RocCurve,
  YoudenChoice,
  BootstrapOptions,
  AucInterval,
  AucDifference,
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
export type { Thumbnail, ReportOptions, ReportFigures, ReportSection, WrittenReport } from './report.ts';
export {
  PATIENT_SCORE_RULE,
  PATIENT_GROUPING_RULE,
  groupMetrics,
  aggregatePatients,
  patientLevel,
  perSourceMetrics,
  locateMetadata,
  cohortResults,
  cohortToJson,
  cohortHeadline,
} from './cohorts.ts';
export type { GroupMetrics, PatientSlice, PatientScore, PatientLevel, SourceMetrics, PerSource, MetadataMatch, LocatedMetadata, CohortResults, CohortOptions } from './cohorts.ts';
export { cohortSections } from './cohort-report.ts';
export {
  MetadataError,
  METADATA_FILE,
  PROVENANCE_FILE,
  PATIENT_COLUMN,
  parseCsvStrict,
  readPathTable,
  normalisePath,
  metadataSearchPath,
  findMetadata,
  rowOf,
} from './metadata.ts';
export type { CsvRow, CsvTable, PathTable } from './metadata.ts';
