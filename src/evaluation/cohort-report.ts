/** report.html sections for the patient level and per source (see cohorts.ts). */
import type { CohortResults, GroupMetrics } from './cohorts.ts';
import { PATIENT_GROUPING_RULE, PATIENT_SCORE_RULE } from './cohorts.ts';
import type { ReportSection } from './report.ts';
import { escapeXml as escapeHtml } from './svg.ts';

const f = (v: number | null, digits = 3) => (v === null ? 'n/a' : v.toFixed(digits));

function aucCell(m: GroupMetrics): string {
  if (m.auc === null) return `<td title="${escapeHtml(m.aucNote ?? '')}">n/a</td>`;
  const ci = m.aucCi ? ` (${f(m.aucCi.low)}–${f(m.aucCi.high)})` : '';
  return `<td${m.aucNote ? ` title="${escapeHtml(m.aucNote)}"` : ''}>${f(m.auc)}${ci}</td>`;
}

function notes(results: CohortResults): string {
  const { notes: list, file } = results.metadata;
  const source = file ? `Metadata: ${escapeHtml(file)}.` : '';
  // The reason a section is missing is said in that section.
  const shown = new Set([results.missing.patientLevel, results.missing.perSource]);
  const items = list.filter((n) => !shown.has(n)).map((n) => `<li>${escapeHtml(n)}</li>`).join('');
  return `<p class="note">${source}</p>${items ? `<ul class="note">${items}</ul>` : ''}`;
}

function patientSection(results: CohortResults, classNames: readonly [string, string]): string {
  const p = results.patientLevel;
  if (!p) return `<p class="note">Not available: ${escapeHtml(results.missing.patientLevel ?? 'no metadata')}.</p>`;
  const m = p.metrics;
  const [negative, positive] = classNames;
  const c = m.counts;
  const ciLevel = m.aucCi ? `${Math.round(m.aucCi.level * 100)} % CI` : 'CI';
  return (
    `<table class="patient-level"><tbody>` +
    `<tr><td>patients</td><td>${m.n} (${p.perClass[positive] ?? 0} ${escapeHtml(positive)}, ${p.perClass[negative] ?? 0} ${escapeHtml(negative)}) from ${p.slices} slices</td></tr>` +
    `<tr><td>accuracy</td><td>${f(m.accuracy)} (${c.tp + c.tn} of ${m.n})</td></tr>` +
    `<tr><td>sensitivity</td><td>${f(m.sensitivity)} (TP ${c.tp} / ${c.tp + c.fn})</td></tr>` +
    `<tr><td>specificity</td><td>${f(m.specificity)} (TN ${c.tn} / ${c.tn + c.fp})</td></tr>` +
    `<tr><td>AUC (${ciLevel})</td>${aucCell(m)}</tr>` +
    `<tr><td>patients with both classes</td><td>${p.mixedLabelIds.length}</td></tr>` +
    `</tbody></table>` +
    `<h3>Confusion matrix (patients)</h3>` +
    `<table class="patient-confusion"><thead><tr><th>true \\ predicted</th><th>${escapeHtml(negative)}</th><th>${escapeHtml(positive)}</th></tr></thead><tbody>` +
    `<tr><td>${escapeHtml(negative)}</td><td>${c.tn}</td><td>${c.fp}</td></tr>` +
    `<tr><td>${escapeHtml(positive)}</td><td>${c.fn}</td><td>${c.tp}</td></tr></tbody></table>` +
    `<p class="note">Patient score: ${escapeHtml(PATIENT_SCORE_RULE)}, k = ${p.k}; positive when the score ≥ the model's threshold ` +
    `${escapeHtml(p.threshold.toFixed(4))}. Grouping: ${escapeHtml(PATIENT_GROUPING_RULE)}.` +
    (m.aucCi ? ` The CI is the percentile bootstrap over ${m.aucCi.resamples} resamples of the patients (seed ${m.aucCi.seed}).` : '') +
    `</p>`
  );
}

function sourceSection(results: CohortResults, classNames: readonly [string, string]): string {
  const s = results.perSource;
  if (!s) return `<p class="note">Not available: ${escapeHtml(results.missing.perSource ?? 'no metadata')}.</p>`;
  const [negative, positive] = classNames;
  const rows = s.sources.map(
    (r) =>
      `<tr><td>${escapeHtml(r.source)}</td><td>${r.n}</td><td>${r.positives}</td><td>${r.negatives}</td><td>${f(r.accuracy)}</td>` +
      `<td>${f(r.sensitivity)}</td><td>${f(r.specificity)}</td>${aucCell(r)}</tr>`,
  );
  return (
    `<table class="per-source"><thead><tr><th>${escapeHtml(s.column)}</th><th>images</th><th>${escapeHtml(positive)}</th><th>${escapeHtml(negative)}</th>` +
    `<th>accuracy</th><th>sensitivity</th><th>specificity</th><th>AUC</th></tr></thead><tbody>${rows.join('')}</tbody></table>` +
    `<p class="note">Slice level, at the model's threshold, from column '${escapeHtml(s.column)}' of ${escapeHtml(s.file)}. ` +
    `n/a: AUC is not defined for a source holding one class, nor sensitivity (specificity) without positives (negatives).</p>`
  );
}

/** The "Patient level" and "Per source" sections, each saying why when it is not available. */
export function cohortSections(results: CohortResults, classNames: readonly [string, string]): ReportSection[] {
  return [
    { id: 'patient-level', heading: 'Patient level', html: patientSection(results, classNames) + notes(results) },
    { id: 'per-source', heading: 'Per source', html: sourceSection(results, classNames) },
  ];
}
