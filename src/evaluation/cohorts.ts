/**
 * Results above the slice: per patient (when the metadata has patient_id) and per source (when it has the source
 * column), from the slice predictions of `evaluate` and the metadata.csv beside the evaluated folder.
 *
 * Patient level: slices are grouped by (patient_id, true class). An id found with images of both classes (a labelling
 * conflict, or two people under one id) becomes one patient per class rather than being merged or dropped, and is
 * counted in `mixedLabelPatients`. A patient's score is the mean of its k highest slice probabilities (all of them
 * when it has fewer than k slices; k = config evaluate.patientTopK, default 5), the rule `predict` uses for a study;
 * it is called positive at the model's saved threshold.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DatasetError } from '../data/errors.ts';
import type { PredictionRecord } from './evaluate.ts';
import type { AucInterval, BootstrapOptions, ConfusionCounts, Label } from './metrics.ts';
import { bootstrapAucCi, MetricError, metricsAtThreshold, predict, rocAuc, topKMean } from './metrics.ts';
import type { CsvRow, PathTable } from './metadata.ts';
import { findMetadata, PATIENT_COLUMN, PROVENANCE_FILE, readPathTable, rowOf } from './metadata.ts';

export const PATIENT_SCORE_RULE = 'mean of the k highest slice probabilities of the patient (of all its slices when it has fewer than k)';
export const PATIENT_GROUPING_RULE =
  'one patient per (patient_id, true class): an id with images of both classes counts once per class (see mixedLabelPatients)';

/** Counts and rates of a group at a threshold; rates and AUC are null, never NaN, where a class is missing. */
export interface GroupMetrics {
  n: number;
  positives: number;
  negatives: number;
  counts: ConfusionCounts;
  accuracy: number;
  /** null when the group has no positives. */
  sensitivity: number | null;
  /** null when the group has no negatives. */
  specificity: number | null;
  /** null when only one class is present (see aucNote). */
  auc: number | null;
  /** Bootstrap interval, when asked for and defined. */
  aucCi: Omit<AucInterval, 'auc'> | null;
  /** Why auc or aucCi is null. */
  aucNote: string | null;
}

const compareIds = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });

/**
 * Metrics of one group (scores: probabilities or patient scores). With `bootstrap`, the AUC gets its percentile
 * bootstrap CI, as the slice level does.
 */
export function groupMetrics(
  labels: readonly Label[],
  scores: readonly number[],
  threshold: number,
  classNames: readonly [string, string],
  bootstrap?: BootstrapOptions,
): GroupMetrics {
  const m = metricsAtThreshold(labels, scores, threshold);
  const positives = m.tp + m.fn;
  const negatives = m.tn + m.fp;
  let auc: number | null = null;
  let aucCi: GroupMetrics['aucCi'] = null;
  let aucNote: string | null = null;
  if (positives === 0 || negatives === 0) {
    aucNote = `AUC undefined: only ${classNames[positives ? 1 : 0]} present (${positives} ${classNames[1]}, ${negatives} ${classNames[0]})`;
  } else if (bootstrap) {
    try {
      const { auc: value, ...interval } = bootstrapAucCi(labels, scores, bootstrap);
      auc = value;
      aucCi = interval;
    } catch (error) {
      if (!(error instanceof MetricError)) throw error;
      auc = rocAuc(labels, scores);
      aucNote = `no confidence interval: ${error.message}`;
    }
  } else auc = rocAuc(labels, scores);
  return {
    n: labels.length,
    positives,
    negatives,
    counts: { tp: m.tp, fp: m.fp, tn: m.tn, fn: m.fn },
    accuracy: m.accuracy,
    sensitivity: positives ? m.sensitivity : null,
    specificity: negatives ? m.specificity : null,
    auc,
    aucCi,
    aucNote,
  };
}

export interface PatientSlice {
  patientId: string;
  label: Label;
  probability: number;
}

export interface PatientScore {
  patientId: string;
  label: Label;
  /** Slices of the patient in the evaluated set. */
  slices: number;
  /** Slices averaged: min(k, slices). */
  k: number;
  score: number;
}

/**
 * Patient scores: slices grouped by (patient_id, label), each group scored by `topKMean` with `k`. Sorted positives
 * first, then by id (numeric-aware). `mixedLabelIds`: ids that appear with both labels (sorted).
 */
export function aggregatePatients(slices: readonly PatientSlice[], k: number): { patients: PatientScore[]; mixedLabelIds: string[] } {
  const groups = new Map<string, { patientId: string; label: Label; probabilities: number[] }>();
  const labelsOf = new Map<string, Set<Label>>();
  for (const s of slices) {
    const key = `${s.label}\u0000${s.patientId}`;
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { patientId: s.patientId, label: s.label, probabilities: [] }));
    group.probabilities.push(s.probability);
    labelsOf.set(s.patientId, (labelsOf.get(s.patientId) ?? new Set<Label>()).add(s.label));
  }
  const patients = [...groups.values()]
    .map((g): PatientScore => {
      const top = topKMean(g.probabilities, k);
      return { patientId: g.patientId, label: g.label, slices: g.probabilities.length, k: top.k, score: top.score };
    })
    .sort((a, b) => b.label - a.label || compareIds(a.patientId, b.patientId));
  const mixedLabelIds = [...labelsOf].filter(([, labels]) => labels.size > 1).map(([id]) => id).sort(compareIds);
  return { patients, mixedLabelIds };
}

export interface PatientLevel {
  /** The configured k (a patient with fewer slices averages all of them). */
  k: number;
  threshold: number;
  /** Patients per class name. */
  perClass: Record<string, number>;
  /** Slices aggregated (matched to a row with a non-empty patient_id). */
  slices: number;
  mixedLabelIds: string[];
  metrics: GroupMetrics;
  patients: Array<PatientScore & { predicted: Label }>;
}

export function patientLevel(
  slices: readonly PatientSlice[],
  options: { k: number; threshold: number; classNames: readonly [string, string]; bootstrap?: BootstrapOptions },
): PatientLevel {
  const { patients, mixedLabelIds } = aggregatePatients(slices, options.k);
  if (patients.length === 0) throw new MetricError('patient level: no slices with a patient id');
  const labels = patients.map((p) => p.label);
  const scores = patients.map((p) => p.score);
  const predicted = predict(scores, options.threshold);
  const [negative, positive] = options.classNames;
  return {
    k: options.k,
    threshold: options.threshold,
    perClass: { [positive]: labels.filter((l) => l === 1).length, [negative]: labels.filter((l) => l === 0).length },
    slices: slices.length,
    mixedLabelIds,
    metrics: groupMetrics(labels, scores, options.threshold, options.classNames, options.bootstrap ?? {}),
    patients: patients.map((p, i) => ({ ...p, predicted: predicted[i]! })),
  };
}

export interface SourceMetrics extends GroupMetrics {
  source: string;
}

export interface PerSource {
  column: string;
  /** The csv the column was read from. */
  file: string;
  sources: SourceMetrics[];
  /** Matched images whose source value is empty (left out). */
  withoutSource: number;
}

/** Slice-level metrics per source value (sorted numeric-aware); no bootstrap. */
export function perSourceMetrics(
  slices: ReadonlyArray<{ source: string; label: Label; probability: number }>,
  threshold: number,
  classNames: readonly [string, string],
): SourceMetrics[] {
  const bySource = new Map<string, { labels: Label[]; scores: number[] }>();
  for (const s of slices) {
    let group = bySource.get(s.source);
    if (!group) bySource.set(s.source, (group = { labels: [], scores: [] }));
    group.labels.push(s.label);
    group.scores.push(s.probability);
  }
  return [...bySource]
    .sort(([a], [b]) => compareIds(a, b))
    .map(([source, g]) => ({ source, ...groupMetrics(g.labels, g.scores, threshold, classNames) }));
}

export interface MetadataMatch {
  /** The metadata.csv used, or null when none was found. */
  file: string | null;
  /** Folders looked in, nearest first (empty when the file was given). */
  searched: string[];
  images: number;
  /** Images with a row. */
  matched: number;
  /** Images without a row: left out of the patient level and per source. */
  unmatched: number;
  /** The first few unmatched images. */
  unmatchedExamples: string[];
  /** Rows whose `class` differs from the image's class folder (the folder's class is used). */
  classMismatches: number;
  /** Why a result is missing or partial, in words. */
  notes: string[];
}

export interface CohortResults {
  metadata: MetadataMatch;
  patientLevel: PatientLevel | null;
  perSource: PerSource | null;
  /** Why patientLevel or perSource is null (also in metadata.notes). */
  missing: { patientLevel: string | null; perSource: string | null };
}

export interface CohortOptions {
  /** The evaluated folder (one subfolder per class). */
  folder: string;
  /** Data root: the search for metadata.csv climbs no higher (see metadataSearchPath). */
  root?: string;
  /** Use this csv instead of searching. */
  metadataFile?: string;
  topK: number;
  sourceColumn: string;
  threshold: number;
  /** Names of label 0 and label 1 (the class folder names). */
  classNames: readonly [string, string];
  bootstrap?: BootstrapOptions;
}

/** The table holding the source column: metadata.csv itself, else provenance.csv beside it. */
function sourceTable(metadata: PathTable, column: string): PathTable | null {
  if (metadata.columns.includes(column)) return metadata;
  const provenance = join(metadata.dir, PROVENANCE_FILE);
  if (!existsSync(provenance)) return null;
  const table = readPathTable(provenance);
  return table.columns.includes(column) ? table : null;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** The metadata found (or given) for an evaluated folder, parsed; what cohortResults reads. */
export interface LocatedMetadata {
  file: string | null;
  searched: string[];
  table: PathTable | null;
  /** The table holding the source column (metadata.csv or provenance.csv), or null when neither has it. */
  sources: PathTable | null;
}

/**
 * Finds and strictly parses the metadata (and the source column's table) before any image is predicted, so a
 * malformed csv fails at once.
 */
export function locateMetadata(options: Pick<CohortOptions, 'folder' | 'root' | 'metadataFile' | 'sourceColumn'>): LocatedMetadata {
  let file: string | null;
  let searched: string[] = [];
  if (options.metadataFile) {
    file = resolve(options.metadataFile);
    if (!existsSync(file)) throw new DatasetError(`metadata file not found: ${file}`);
  } else ({ file, searched } = findMetadata(options.folder, options.root));
  const table = file ? readPathTable(file) : null;
  return { file, searched, table, sources: table && sourceTable(table, options.sourceColumn) };
}

/**
 * Patient-level and per-source results of slice predictions, from the metadata beside `options.folder` (or
 * `located`, when already read by locateMetadata).
 */
export function cohortResults(predictions: readonly PredictionRecord[], options: CohortOptions, located: LocatedMetadata = locateMetadata(options)): CohortResults {
  const { folder, classNames, threshold } = options;
  const { file, searched, table, sources } = located;
  const metadata: MetadataMatch = { file, searched, images: predictions.length, matched: 0, unmatched: predictions.length, unmatchedExamples: [], classMismatches: 0, notes: [] };
  if (!file || !table) {
    const reason = `no metadata.csv in ${searched.join(', ')}: no patient-level or per-source results`;
    metadata.notes.push(reason);
    return { metadata, patientLevel: null, perSource: null, missing: { patientLevel: reason, perSource: reason } };
  }

  const rows: Array<CsvRow | undefined> = predictions.map((p) => rowOf(table, p.path, folder));
  const unmatched = predictions.filter((_, i) => !rows[i]);
  metadata.matched = predictions.length - unmatched.length;
  metadata.unmatched = unmatched.length;
  metadata.unmatchedExamples = unmatched.slice(0, 5).map((p) => p.path);
  metadata.classMismatches = rows.filter((row, i) => row?.values.class !== undefined && row.values.class !== classNames[predictions[i]!.label]).length;
  if (unmatched.length) metadata.notes.push(`${plural(unmatched.length, 'image')} of ${predictions.length} have no row in ${file}: left out of the patient level and per source`);
  if (metadata.classMismatches) metadata.notes.push(`${plural(metadata.classMismatches, 'row')} give a class other than the image's folder; the folder's class is used`);
  const matched = predictions.flatMap((p, i) => (rows[i] ? [{ prediction: p, row: rows[i] }] : []));
  const label = (p: PredictionRecord): Label => (p.label === 1 ? 1 : 0);
  const missing: CohortResults['missing'] = { patientLevel: null, perSource: null };

  let patients: PatientLevel | null = null;
  if (!table.columns.includes(PATIENT_COLUMN)) {
    missing.patientLevel = `${file} has no ${PATIENT_COLUMN} column: no patient-level results`;
  } else {
    const slices = matched.filter(({ row }) => row.values[PATIENT_COLUMN]!.trim() !== '');
    const blank = matched.length - slices.length;
    if (blank) metadata.notes.push(`${plural(blank, 'image')} with an empty ${PATIENT_COLUMN}: left out of the patient level`);
    if (slices.length === 0) missing.patientLevel = `no image has a ${PATIENT_COLUMN}: no patient-level results`;
    else {
      patients = patientLevel(
        slices.map(({ prediction, row }) => ({ patientId: row.values[PATIENT_COLUMN]!.trim(), label: label(prediction), probability: prediction.probability })),
        { k: options.topK, threshold, classNames, bootstrap: options.bootstrap },
      );
      const mixed = patients.mixedLabelIds;
      if (mixed.length) {
        metadata.notes.push(`${plural(mixed.length, 'patient id')} with images of both classes, counted once per class: ${mixed.slice(0, 10).join(', ')}${mixed.length > 10 ? ', ...' : ''}`);
      }
    }
  }

  let perSource: PerSource | null = null;
  const column = options.sourceColumn;
  if (!sources) {
    const provenance = existsSync(join(table.dir, PROVENANCE_FILE)) ? ` or ${join(table.dir, PROVENANCE_FILE)}` : '';
    missing.perSource = `no '${column}' column in ${file}${provenance}: no per-source results`;
  } else {
    const sourceRows = sources === table ? rows : predictions.map((p) => rowOf(sources, p.path, folder));
    const withRow = sourceRows.filter(Boolean).length;
    const withSource = predictions.flatMap((p, i) => {
      const source = sourceRows[i]?.values[column]!.trim();
      return source ? [{ source, label: label(p), probability: p.probability }] : [];
    });
    const withoutSource = withRow - withSource.length;
    if (sources !== table && withRow < predictions.length) metadata.notes.push(`${plural(predictions.length - withRow, 'image')} without a row in ${sources.file}: left out of per source`);
    if (withoutSource) metadata.notes.push(`${plural(withoutSource, 'image')} with an empty ${column}: left out of per source`);
    if (withSource.length === 0) missing.perSource = `no image has a ${column} value: no per-source results`;
    else perSource = { column, file: sources.file, sources: perSourceMetrics(withSource, threshold, classNames), withoutSource };
  }
  if (missing.patientLevel) metadata.notes.push(missing.patientLevel);
  if (missing.perSource) metadata.notes.push(missing.perSource);
  return { metadata, patientLevel: patients, perSource, missing };
}

function nullable(v: number | null, digits = 3): string {
  return v === null ? 'n/a' : v.toFixed(digits);
}

/** metrics.json fields: `metadata`, `patientLevel` and `perSource` (null when not available; metadata.notes says why). */
export function cohortToJson(results: CohortResults): Record<string, unknown> {
  const { patientLevel: p, perSource } = results;
  const matrix = (c: ConfusionCounts) => ({
    rows: 'true class (label 0, label 1)',
    columns: 'predicted class (label 0, label 1)',
    counts: [
      [c.tn, c.fp],
      [c.fn, c.tp],
    ],
  });
  return {
    metadata: results.metadata,
    patientLevel: p && {
      k: p.k,
      scoreRule: PATIENT_SCORE_RULE,
      grouping: PATIENT_GROUPING_RULE,
      threshold: p.threshold,
      thresholdRule: "positive when the patient score >= the model's saved (slice) threshold",
      patients: p.metrics.n,
      patientsPerClass: p.perClass,
      slices: p.slices,
      mixedLabelPatients: { count: p.mixedLabelIds.length, ids: p.mixedLabelIds },
      counts: p.metrics.counts,
      confusionMatrix: matrix(p.metrics.counts),
      accuracy: p.metrics.accuracy,
      sensitivity: p.metrics.sensitivity,
      specificity: p.metrics.specificity,
      auc: p.metrics.auc,
      aucCi: p.metrics.aucCi,
      aucNote: p.metrics.aucNote,
      scores: p.patients,
    },
    perSource: perSource && {
      column: perSource.column,
      file: perSource.file,
      withoutSource: perSource.withoutSource,
      sources: perSource.sources,
    },
  };
}

/** One or two lines for the terminal after `evaluate`. */
export function cohortHeadline(results: CohortResults): string {
  const { patientLevel: p, perSource } = results;
  const lines: string[] = [];
  if (p) {
    const m = p.metrics;
    const ci = m.aucCi ? ` (${Math.round(m.aucCi.level * 100)}% CI ${m.aucCi.low.toFixed(3)}-${m.aucCi.high.toFixed(3)})` : '';
    const perClass = Object.entries(p.perClass).map(([name, count]) => `${count} ${name}`).join(', ');
    lines.push(
      `patients (mean of top-${p.k} slices): accuracy ${m.accuracy.toFixed(3)}, AUC ${nullable(m.auc)}${ci}, sensitivity ${nullable(m.sensitivity)}, ` +
        `specificity ${nullable(m.specificity)} (n = ${m.n}: ${perClass}${p.mixedLabelIds.length ? `; ${plural(p.mixedLabelIds.length, 'id')} with both classes` : ''})`,
    );
  } else lines.push(`patients: n/a (${results.missing.patientLevel})`);
  if (perSource) {
    const accuracies = perSource.sources.map((s) => s.accuracy);
    lines.push(
      `per source (${perSource.column}): ${plural(perSource.sources.length, 'source')}, accuracy ${Math.min(...accuracies).toFixed(3)}-${Math.max(...accuracies).toFixed(3)}, ` +
        `AUC defined for ${perSource.sources.filter((s) => s.auc !== null).length}`,
    );
  }
  if (results.metadata.unmatched && results.metadata.file) lines.push(`images without a metadata row: ${results.metadata.unmatched} of ${results.metadata.images}`);
  return lines.join('\n');
}
