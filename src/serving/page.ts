/** The web page: one self-contained HTML document (no external scripts, styles or fonts). */
import { DISCLAIMER } from '../inference/model.ts';

export function pageHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>covid-ct</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 960px; padding: 1rem 1.5rem; color: #222; }
  .disclaimer { background: #fff3cd; border: 1px solid #e0c36a; padding: .6rem .9rem; border-radius: 6px; font-weight: 600; }
  #drop { border: 2px dashed #8a8a8a; border-radius: 8px; padding: 2rem; text-align: center; margin: 1rem 0; cursor: pointer; }
  #drop.over { background: #eef5ff; border-color: #3a7bd5; }
  .row { display: flex; gap: 1.5rem; flex-wrap: wrap; align-items: flex-start; }
  #heatmap { max-width: 384px; width: 100%; image-rendering: auto; border-radius: 4px; }
  #result { min-width: 260px; }
  .big { font-size: 2rem; font-weight: 700; }
  .error { color: #a40000; font-weight: 600; }
  table { border-collapse: collapse; }
  td, th { padding: .15rem .6rem; text-align: left; border-bottom: 1px solid #ddd; font-size: 13px; }
  [hidden] { display: none !important; }
</style>
</head>
<body>
<h1>covid-ct</h1>
<p class="disclaimer" id="disclaimer">${DISCLAIMER} Do not use it to diagnose, treat or triage anyone.</p>
<div id="drop" tabindex="0">Drop a chest CT image (PNG, JPEG, BMP, TIFF) or a DICOM file here, or
  <label><u>pick one</u><input id="file" type="file" hidden></label>.</div>
<p id="status" role="status"></p>
<div class="row">
  <div id="result" hidden>
    <div>P(COVID)</div>
    <div class="big" id="probability"></div>
    <div>label: <b id="label"></b> (threshold <span id="threshold"></span>)</div>
    <div id="study"></div>
    <div id="warnings"></div>
  </div>
  <img id="heatmap" alt="Grad-CAM heatmap: where the model looked" hidden>
</div>
<h2>Model</h2>
<div id="card">loading…</div>
<p id="report-link" hidden><a href="/report">Evaluation report of this model</a></p>
<h2>Recent predictions</h2>
<table id="recent"><thead><tr><th>time</th><th>kind</th><th>P(COVID)</th><th>label</th><th>ms</th><th>sha256</th></tr></thead><tbody></tbody></table>
<script>
const $ = (id) => document.getElementById(id);
const text = (id, value) => { $(id).textContent = value; };
async function json(url, init) {
  const response = await fetch(url, init);
  const body = await response.json();
  if (!response.ok) throw new Error(body.message || response.statusText);
  return body;
}
async function loadCard() {
  const model = await json('/api/model');
  const card = model.card;
  const rows = [
    ['id', card.id], ['backbone', card.backbone.name + ' (fine-tuned from ' + card.backbone.fineTuneAt + ')'],
    ['image size', card.imageSize + ' px'], ['threshold', card.threshold.toFixed(4) + ' (' + card.thresholdRule + ')'],
    ['trained', card.createdAt],
    ...Object.entries(card.validation || {}).map(([k, v]) => ['validation ' + k, typeof v === 'number' ? v.toFixed(3) : String(v)]),
    ['limits', model.limits],
    ['use', model.disclaimer],
  ];
  const table = document.createElement('table');
  for (const [k, v] of rows) {
    const tr = table.insertRow();
    tr.insertCell().textContent = k;
    tr.insertCell().textContent = v;
  }
  $('card').replaceChildren(table);
  $('report-link').hidden = !model.report;
}
async function loadRecent() {
  const { predictions } = await json('/api/predictions?limit=10');
  const body = $('recent').tBodies[0];
  body.replaceChildren();
  for (const p of predictions) {
    const tr = body.insertRow();
    for (const v of [p.time, p.inputKind, p.probability.toFixed(4), p.label, p.latencyMs.toFixed(0), p.inputSha256.slice(0, 12)]) tr.insertCell().textContent = v;
  }
}
async function upload(file) {
  text('status', 'predicting ' + file.name + '…');
  $('status').className = '';
  const form = new FormData();
  form.append('file', file, file.name);
  try {
    const result = await json('/api/predict?explain=true', { method: 'POST', body: form });
    const first = result.predictions[0];
    const study = result.studies[0];
    const shown = study ? study.score : first.probability;
    text('probability', shown.toFixed(4));
    text('label', study ? study.label : first.label);
    text('threshold', result.model.threshold.toFixed(4));
    text('study', study ? 'study score: mean of the top ' + study.k + ' of ' + study.slices + ' slices' : '');
    text('warnings', [...new Set(result.predictions.flatMap((p) => p.warnings))].join('; '));
    $('result').hidden = false;
    if (first.heatmap) { $('heatmap').src = first.heatmap; $('heatmap').hidden = false; }
    text('status', file.name + ': ' + result.latencyMs.toFixed(0) + ' ms. ' + result.disclaimer);
    loadRecent();
  } catch (error) {
    $('status').className = 'error';
    text('status', file.name + ': ' + error.message);
  }
}
const drop = $('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); if (e.dataTransfer.files[0]) upload(e.dataTransfer.files[0]); });
$('file').addEventListener('change', () => { if ($('file').files[0]) upload($('file').files[0]); });
loadCard().catch((e) => text('card', e.message));
loadRecent().catch(() => {});
</script>
</body>
</html>
`;
}
