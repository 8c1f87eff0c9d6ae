/** Patient level and per source: hand-worked aggregation, strict metadata parsing, matching, and the real COVID-CT test set. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SHARED_ROOT } from '../../src/config/index.ts';
import { resolveConfig } from '../../src/config/index.ts';
import type { PatientSlice, PredictionRecord } from '../../src/evaluation/index.ts';
import {
  aggregatePatients,
  cohortHeadline,
  cohortResults,
  cohortSections,
  cohortToJson,
  evaluatePredictions,
  metadataSearchPath,
  MetadataError,
  parseCsvStrict,
  patientLevel,
  perSourceMetrics,
  readPathTable,
  renderReportHtml,
  writeEvaluationReport,
} from '../../src/evaluation/index.ts';
import { tempDir } from '../data/fixtures.ts';

const CLASSES = ['NonCOVID', 'COVID'] as const;
const close = (actual: number | null, expected: number, what = '') => assert.ok(actual !== null && Math.abs(actual - expected) < 1e-12, `${what}: ${actual} != ${expected}`);

/** Every number in a JSON-able value, to check none is NaN or infinite. */
function numbers(value: unknown): number[] {
  if (typeof value === 'number') return [value];
  if (Array.isArray(value)) return value.flatMap(numbers);
  if (value && typeof value === 'object') return Object.values(value).flatMap(numbers);
  return [];
}

const slices = (patientId: string, label: 0 | 1, probabilities: number[]): PatientSlice[] => probabilities.map((probability) => ({ patientId, label, probability }));

// A: six COVID slices; B: two non-COVID slices; C: one id with a COVID and two non-COVID slices; D: one non-COVID slice.
const HAND = [
  ...slices('A', 1, [0.9, 0.1, 0.8, 0.7, 0.6, 0.5]),
  ...slices('B', 0, [0.2, 0.4]),
  ...slices('C', 1, [0.6]),
  ...slices('C', 0, [0.55, 0.05]),
  ...slices('D', 0, [0.9]),
];

test('config: the patient top-k defaults to 5 and the source column to "source"', () => {
  const config = resolveConfig();
  assert.equal(config.evaluate.patientTopK, 5);
  assert.equal(config.evaluate.sourceColumn, 'source');
  assert.throws(() => resolveConfig({ evaluate: { patientTopK: 0 } }), /evaluate\.patientTopK must be a positive integer/);
});

test('patients: top-k mean, fewer slices than k, and an id with both labels split by label', () => {
  const { patients, mixedLabelIds } = aggregatePatients(HAND, 5);
  assert.deepEqual(mixedLabelIds, ['C']);
  const byKey = new Map(patients.map((p) => [`${p.patientId}/${p.label}`, p]));
  assert.deepEqual([...byKey.keys()], ['A/1', 'C/1', 'B/0', 'C/0', 'D/0'], 'positives first, then by id');
  // A: the five highest of six, (0.9 + 0.8 + 0.7 + 0.6 + 0.5) / 5; the 0.1 slice is left out.
  close(byKey.get('A/1')!.score, 0.7, 'A');
  assert.equal(byKey.get('A/1')!.k, 5);
  assert.equal(byKey.get('A/1')!.slices, 6);
  // B: two slices < k, the mean of both.
  close(byKey.get('B/0')!.score, 0.3, 'B');
  assert.equal(byKey.get('B/0')!.k, 2);
  // C counts once per label.
  close(byKey.get('C/1')!.score, 0.6, 'C covid');
  close(byKey.get('C/0')!.score, 0.3, 'C non-covid');
  // k = 2: A is (0.9 + 0.8) / 2.
  close(aggregatePatients(HAND, 2).patients[0]!.score, 0.85, 'A, k = 2');
  assert.throws(() => aggregatePatients(HAND, 0), /k must be a positive integer/);
});

test('patient level: confusion matrix at the threshold, rates, AUC with a seeded bootstrap CI', () => {
  const level = patientLevel(HAND, { k: 5, threshold: 0.5, classNames: CLASSES, bootstrap: { seed: 7, resamples: 500 } });
  // Scores: A 0.7 (TP), C/1 0.6 (TP), B 0.3 (TN), C/0 0.3 (TN), D 0.9 (FP).
  assert.deepEqual(level.metrics.counts, { tp: 2, fp: 1, tn: 2, fn: 0 });
  assert.deepEqual(level.perClass, { COVID: 2, NonCOVID: 3 });
  assert.equal(level.slices, 12);
  assert.equal(level.metrics.n, 5);
  close(level.metrics.accuracy, 0.8, 'accuracy');
  close(level.metrics.sensitivity, 1, 'sensitivity');
  close(level.metrics.specificity, 2 / 3, 'specificity');
  // Each positive beats B and C/0 and loses to D: 4 wins of 6 pairs.
  close(level.metrics.auc, 4 / 6, 'AUC');
  assert.equal(level.metrics.aucCi!.seed, 7);
  assert.equal(level.metrics.aucCi!.resamples, 500);
  assert.ok(level.metrics.aucCi!.low <= 4 / 6 && 4 / 6 <= level.metrics.aucCi!.high);
  assert.deepEqual(patientLevel(HAND, { k: 5, threshold: 0.5, classNames: CLASSES, bootstrap: { seed: 7, resamples: 500 } }).metrics.aucCi, level.metrics.aucCi, 'same seed, same CI');
  assert.deepEqual(level.patients.map((p) => p.predicted), [1, 1, 0, 0, 1]);
});

test('per source: a single-class source has AUC null with a reason and null specificity, never NaN', () => {
  const rows = [
    { source: 'hospital-a', label: 1 as const, probability: 0.8 },
    { source: 'hospital-a', label: 1 as const, probability: 0.4 },
    { source: 'hospital-a', label: 0 as const, probability: 0.3 },
    { source: 'hospital-a', label: 0 as const, probability: 0.6 },
    { source: 'paper-10', label: 1 as const, probability: 0.9 },
    { source: 'paper-10', label: 1 as const, probability: 0.2 },
    { source: 'paper-9', label: 0 as const, probability: 0.1 },
  ];
  const sources = perSourceMetrics(rows, 0.5, CLASSES);
  assert.deepEqual(sources.map((s) => s.source), ['hospital-a', 'paper-9', 'paper-10'], 'numeric-aware order');
  const [hospital, paper9, paper10] = sources;
  assert.deepEqual(hospital!.counts, { tp: 1, fp: 1, tn: 1, fn: 1 });
  close(hospital!.accuracy, 0.5, 'hospital accuracy');
  // Positives 0.8, 0.4 against negatives 0.3, 0.6: 0.8 beats both, 0.4 beats 0.3: 3 of 4.
  close(hospital!.auc, 0.75, 'hospital AUC');
  assert.equal(hospital!.aucNote, null);
  assert.equal(paper10!.auc, null);
  assert.equal(paper10!.specificity, null);
  close(paper10!.sensitivity, 0.5, 'paper-10 sensitivity');
  assert.equal(paper10!.aucNote, 'AUC undefined: only COVID present (2 COVID, 0 NonCOVID)');
  assert.equal(paper9!.sensitivity, null);
  close(paper9!.specificity, 1, 'paper-9 specificity');
  assert.match(paper9!.aucNote!, /only NonCOVID present/);
  assert.ok(numbers(sources).every(Number.isFinite));
});

test('metadata csv: malformed files are errors naming the file and the line', () => {
  const dir = tempDir();
  const write = (name: string, text: string) => {
    const file = join(dir, name);
    writeFileSync(file, text);
    return file;
  };
  const ragged = write('ragged.csv', 'path,class,patient_id\na.png,COVID,P1\nb.png,COVID\n');
  assert.throws(() => readPathTable(ragged), (error: Error) => error instanceof MetadataError && error.message === `${ragged}:3: 2 fields, but the header (line 1) has 3: path,class,patient_id`);
  const long = write('long.csv', 'path,patient_id\r\na.png,P1\r\nb.png,P2,extra\r\n');
  assert.throws(() => readPathTable(long), { message: `${long}:3: 3 fields, but the header (line 1) has 2: path,patient_id` });
  const headerless = write('headerless.csv', 'CT_COVID/a.png,CT_COVID,Patient 1\nCT_COVID/b.png,CT_COVID,Patient 2\n');
  assert.throws(() => readPathTable(headerless), { message: new RegExp(`^${headerless.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:1: header has no 'path' column .*is the header line missing\\?$`) });
  const empty = write('empty.csv', '\n\n');
  assert.throws(() => readPathTable(empty), { message: `${empty}:1: empty file: expected a header line such as 'path,class,patient_id'` });
  // A quoted field spanning two lines still counts lines right: the ragged row starts on line 4.
  const multiline = write('multiline.csv', 'path,note\n"a.png","two\nlines"\nb.png\n');
  assert.throws(() => readPathTable(multiline), { message: /multiline\.csv:4: 1 field, but the header/ });
  const unterminated = write('unterminated.csv', 'path,patient_id\na.png,"P1\nb.png,P2\n');
  assert.throws(() => readPathTable(unterminated), { message: /unterminated\.csv:2: unterminated quoted field/ });
  const afterQuote = write('after-quote.csv', 'path,patient_id\n"a.png"x,P1\n');
  assert.throws(() => readPathTable(afterQuote), { message: /after-quote\.csv:2: unexpected "x" after a closing quote/ });
  const duplicate = write('duplicate.csv', 'path,patient_id\na.png,P1\n\n./a.png,P2\n');
  assert.throws(() => readPathTable(duplicate), { message: /duplicate\.csv:4: path a\.png already on line 2/ });
  const twice = write('twice.csv', 'path,path\na,b\n');
  assert.throws(() => readPathTable(twice), { message: /twice\.csv:1: header: column 'path' appears twice/ });
  // Well-formed: BOM, CRLF, quotes with doubled quotes and commas, a trailing blank line.
  const table = parseCsvStrict('\uFEFFpath,patient_id\r\n"a,b.png","P ""1"""\r\n\r\nc.png,P2', 'ok.csv');
  assert.deepEqual(table.columns, ['path', 'patient_id']);
  assert.deepEqual(table.rows, [
    { line: 2, values: { path: 'a,b.png', patient_id: 'P "1"' } },
    { line: 4, values: { path: 'c.png', patient_id: 'P2' } },
  ]);
});

/** root/ds/test/{COVID,NonCOVID}/<names>: the files need not exist, only the folders and csv files. */
function folderSet(files: Array<[cls: 'COVID' | 'NonCOVID', name: string, probability: number]>) {
  const root = tempDir();
  const folder = join(root, 'ds', 'test');
  for (const cls of CLASSES) mkdirSync(join(folder, cls), { recursive: true });
  const predictions: PredictionRecord[] = files.map(([cls, name, probability]) => ({ path: join(folder, cls, name), label: cls === 'COVID' ? 1 : 0, probability }));
  return { root, folder, predictions };
}

const OPTIONS = { topK: 5, sourceColumn: 'source', threshold: 0.5, classNames: CLASSES, bootstrap: { seed: 1, resamples: 200 } };

test('metadata is found beside or above the folder and matched by path relative to either base', () => {
  const { root, folder, predictions } = folderSet([
    ['COVID', 'c1.png', 0.9],
    ['COVID', 'c2.png', 0.7],
    ['COVID', 'c3.png', 0.2],
    ['NonCOVID', 'n1.png', 0.1],
    ['NonCOVID', 'n2.png', 0.6],
    ['NonCOVID', 'extra.png', 0.4],
  ]);
  // At the dataset root, paths relative to it; n2 says COVID in its class column; extra.png has no row.
  writeFileSync(
    join(root, 'ds', 'metadata.csv'),
    'path,class,patient_id,source\ntest/COVID/c1.png,COVID,P1,site-b\ntest/COVID/c2.png,COVID,P1,site-b\ntest/COVID/c3.png,COVID,P2,site-a\n' +
      'test/NonCOVID/n1.png,NonCOVID,P3,site-a\n./test/NonCOVID/n2.png,COVID,P4,\nother/x.png,COVID,P9,site-a\n',
  );
  const results = cohortResults(predictions, { ...OPTIONS, folder, root });
  assert.equal(results.metadata.file, join(root, 'ds', 'metadata.csv'));
  assert.deepEqual(results.metadata.searched, [folder, join(root, 'ds'), root]);
  assert.equal(results.metadata.matched, 5);
  assert.equal(results.metadata.unmatched, 1);
  assert.deepEqual(results.metadata.unmatchedExamples, [join(folder, 'NonCOVID', 'extra.png')]);
  assert.equal(results.metadata.classMismatches, 1);
  // Patients: P1 (0.9, 0.7) -> 0.8 TP, P2 0.2 FN, P3 0.1 TN, P4 0.6 FP.
  const p = results.patientLevel!;
  assert.deepEqual(p.metrics.counts, { tp: 1, fp: 1, tn: 1, fn: 1 });
  assert.deepEqual(p.perClass, { COVID: 2, NonCOVID: 2 });
  // AUC: 0.8 beats 0.1 and 0.6, 0.2 beats 0.1: 3 of 4 pairs.
  close(p.metrics.auc, 0.75, 'patient AUC');
  // Per source: n2 has an empty source and is left out; site-a holds c3 (0.2) and n1 (0.1).
  const s = results.perSource!;
  assert.equal(s.withoutSource, 1);
  assert.deepEqual(s.sources.map((x) => [x.source, x.n, x.auc]), [['site-a', 2, 1], ['site-b', 2, null]]);
  assert.deepEqual(results.metadata.notes, [
    `1 image of 6 have no row in ${join(root, 'ds', 'metadata.csv')}: left out of the patient level and per source`,
    "1 row give a class other than the image's folder; the folder's class is used",
    '1 image with an empty source: left out of per source',
  ]);

  // The same csv, its paths relative to the evaluated folder instead, also matches.
  writeFileSync(join(root, 'ds', 'metadata.csv'), 'path,patient_id\nCOVID/c1.png,P1\nCOVID/c3.png,P2\nNonCOVID/n1.png,P3\n');
  const relative = cohortResults(predictions, { ...OPTIONS, folder, root });
  assert.equal(relative.metadata.matched, 3);
  assert.equal(relative.patientLevel!.metrics.n, 3);
  // A csv in the folder itself wins over the one above.
  writeFileSync(join(folder, 'metadata.csv'), 'path,patient_id\nCOVID/c1.png,P1\n');
  assert.equal(cohortResults(predictions, { ...OPTIONS, folder, root }).metadata.file, join(folder, 'metadata.csv'));
});

test('metadata without patient_id or source: no patient level, a note; the source column may come from provenance.csv', () => {
  const { root, folder, predictions } = folderSet([
    ['COVID', 'c1.png', 0.9],
    ['NonCOVID', 'n1.png', 0.2],
  ]);
  const file = join(root, 'ds', 'metadata.csv');
  writeFileSync(file, 'path,class\ntest/COVID/c1.png,COVID\ntest/NonCOVID/n1.png,NonCOVID\n');
  const results = cohortResults(predictions, { ...OPTIONS, folder, root });
  assert.equal(results.patientLevel, null);
  assert.equal(results.perSource, null);
  assert.deepEqual(results.metadata.notes, [`${file} has no patient_id column: no patient-level results`, `no 'source' column in ${file}: no per-source results`]);
  const json = cohortToJson(results);
  assert.equal(json.patientLevel, null);
  assert.match(cohortHeadline(results), /^patients: n\/a \(.*has no patient_id column/);

  writeFileSync(join(root, 'ds', 'provenance.csv'), 'path,source_group\ntest/COVID/c1.png,paper:1\ntest/NonCOVID/n1.png,patient:7\n');
  const grouped = cohortResults(predictions, { ...OPTIONS, sourceColumn: 'source_group', folder, root });
  assert.equal(grouped.perSource!.file, join(root, 'ds', 'provenance.csv'));
  assert.deepEqual(grouped.perSource!.sources.map((s) => [s.source, s.n, s.auc]), [['paper:1', 1, null], ['patient:7', 1, null]]);

  // No csv anywhere up to the root: both null, and the folders searched are named.
  const bare = folderSet([['COVID', 'c1.png', 0.9]]);
  const none = cohortResults(bare.predictions, { ...OPTIONS, folder: bare.folder, root: bare.root });
  assert.equal(none.metadata.file, null);
  assert.match(none.metadata.notes[0]!, /^no metadata\.csv in .*: no patient-level or per-source results$/);
  // Outside the data root, only the folder and its parent are searched.
  assert.deepEqual(metadataSearchPath('/a/b/c/d', '/elsewhere'), ['/a/b/c/d', '/a/b/c']);
  assert.deepEqual(metadataSearchPath('/data/ds/test', '/data'), ['/data/ds/test', '/data/ds', '/data']);
  // A malformed csv found beside the folder is an error naming it, not a silent skip.
  writeFileSync(file, 'path,patient_id\ntest/COVID/c1.png\n');
  assert.throws(() => cohortResults(predictions, { ...OPTIONS, folder, root }), { message: `${file}:2: 1 field, but the header (line 1) has 2: path,patient_id` });
});

test('the real COVID-CT test set: 95 patients from metadata.csv at the dataset root, per source from provenance.csv, in metrics.json and report.html', async () => {
  const dataRoot = join(SHARED_ROOT, 'data');
  const folder = join(dataRoot, 'covid-ct', 'testing-images');
  // Fixed probabilities: COVID 0.9 except every fourth image (0.3), non-COVID 0.1 except every fifth (0.7).
  const predictions: PredictionRecord[] = [];
  for (const [cls, label] of [['CT_COVID', 1], ['CT_NonCOVID', 0]] as const) {
    readdirSync(join(folder, cls))
      .sort()
      .forEach((name, i) => predictions.push({ path: join(folder, cls, name), label, probability: label ? (i % 4 === 0 ? 0.3 : 0.9) : i % 5 === 0 ? 0.7 : 0.1 }));
  }
  const classNames = ['CT_NonCOVID', 'CT_COVID'] as const;
  const options = { folder, root: dataRoot, topK: 5, sourceColumn: 'source_group', threshold: 0.5, classNames, bootstrap: { seed: 42 } };
  const results = cohortResults(predictions, options);
  assert.equal(results.metadata.file, join(dataRoot, 'covid-ct', 'metadata.csv'));
  assert.equal(results.metadata.matched, 203);
  assert.equal(results.metadata.unmatched, 0);
  const p = results.patientLevel!;
  // SOURCE.md: test patients COVID 53, NonCOVID 42. Expected counts and AUC worked out independently (Python csv module).
  assert.deepEqual(p.perClass, { CT_COVID: 53, CT_NonCOVID: 42 });
  assert.equal(p.slices, 203);
  assert.deepEqual(p.mixedLabelIds, []);
  assert.deepEqual(p.metrics.counts, { tp: 44, fp: 6, tn: 36, fn: 9 });
  close(p.metrics.auc, 0.9413746630727763, 'patient AUC');
  assert.equal(p.metrics.aucCi!.seed, 42);
  assert.equal(p.metrics.aucCi!.resamples, 2000);
  assert.equal(results.perSource!.sources.length, 62);
  assert.equal(results.perSource!.sources.filter((s) => s.auc !== null).length, 0, 'every COVID-CT source group holds one class');
  const paper = results.perSource!.sources.find((s) => s.source === 'paper:2020.03.22.20040782')!;
  assert.deepEqual([paper.n, paper.counts.tp, paper.counts.fn], [5, 3, 2]);
  assert.equal(
    cohortHeadline(results),
    'patients (mean of top-5 slices): accuracy 0.842, AUC 0.941 (95% CI 0.892-0.977), sensitivity 0.830, specificity 0.857 (n = 95: 53 CT_COVID, 42 CT_NonCOVID)\n' +
      'per source (source_group): 62 sources, accuracy 0.000-1.000, AUC defined for 0',
  );

  // The default source column is absent from both csv files: no per source, a note.
  const plain = cohortResults(predictions, { ...options, sourceColumn: 'source' });
  assert.equal(plain.perSource, null);
  assert.deepEqual(plain.patientLevel!.metrics.counts, p.metrics.counts);

  // Into the report as evaluate-model writes it.
  const evaluation = evaluatePredictions(predictions, { threshold: 0.5, classNames, bootstrap: { seed: 42, resamples: 200 } });
  const out = tempDir();
  const thumbnail = 'data:image/gif;base64,R0lGODlhAQABAAAAACw=';
  const written = await writeEvaluationReport(out, evaluation, {
    extra: cohortToJson(results),
    sections: cohortSections(results, classNames),
    thumbnails: new Map(predictions.map((r) => [r.path, thumbnail])),
  });
  const json = JSON.parse(readFileSync(written.metricsJson, 'utf8'));
  assert.equal(json.size, 203);
  assert.equal(json.patientLevel.k, 5);
  assert.equal(json.patientLevel.patients, 95);
  assert.deepEqual(json.patientLevel.confusionMatrix.counts, [[36, 6], [9, 44]]);
  assert.equal(json.patientLevel.scores.length, 95);
  assert.deepEqual(json.patientLevel.mixedLabelPatients, { count: 0, ids: [] });
  assert.equal(json.perSource.column, 'source_group');
  assert.equal(json.perSource.sources.length, 62);
  assert.equal(json.metadata.unmatched, 0);
  assert.ok(numbers(json).every(Number.isFinite));
  const html = readFileSync(written.html, 'utf8');
  assert.match(html, /<h2 id="patient-level">Patient level<\/h2>/);
  assert.match(html, /<tr><td>patients<\/td><td>95 \(53 CT_COVID, 42 CT_NonCOVID\) from 203 slices<\/td><\/tr>/);
  assert.match(html, /<h2 id="per-source">Per source<\/h2>/);
  assert.equal([...html.matchAll(/<tr><td>(paper|crawled_patient|medpix_patient)[^<]*<\/td>/g)].length, 62);
  assert.match(html, /<td title="AUC undefined: only CT_COVID present \(5 CT_COVID, 0 CT_NonCOVID\)">n\/a<\/td>/);
  assert.doesNotMatch(html, /NaN|(?<!AUC )undefined/);

  // Without metadata the sections say why.
  const bare = cohortResults(predictions.slice(0, 2), { ...options, folder: tempDir(), root: tempDir() });
  const bareHtml = await renderReportHtml(evaluatePredictions([predictions[0]!, predictions.at(-1)!], { threshold: 0.5, bootstrap: { resamples: 20 } }), {
    sections: cohortSections(bare, classNames),
    thumbnails: new Map(predictions.map((r) => [r.path, thumbnail])),
  });
  assert.match(bareHtml, /<h2 id="patient-level">Patient level<\/h2>\n<p class="note">Not available: no metadata\.csv in /);
});
