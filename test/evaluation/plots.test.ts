import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import type { EpochRecord } from '../../src/evaluation/index.ts';
import {
  confusionMatrixSvg,
  rocAuc,
  rocCurve,
  rocFigureSvg,
  svgToPng,
  trainingHistorySvg,
} from '../../src/evaluation/index.ts';

/** Tags open and close in order (a cheap well-formedness check; sharp's librsvg parses it for real below). */
function assertBalancedTags(svg: string): void {
  const stack: string[] = [];
  for (const match of svg.matchAll(/<(\/?)([a-zA-Z][\w:-]*)[^>]*?(\/?)>/g)) {
    const [, closing, name, selfClosing] = match;
    if (selfClosing) continue;
    if (closing) assert.equal(stack.pop(), name, `unbalanced </${name}>`);
    else stack.push(name!);
  }
  assert.deepEqual(stack, []);
}

async function assertRendersAt(svg: string, width: number, height: number): Promise<void> {
  assertBalancedTags(svg);
  const png = await svgToPng(svg);
  const meta = await sharp(png).metadata();
  assert.equal(meta.format, 'png');
  assert.equal(meta.width, width);
  assert.equal(meta.height, height);
  // Not blank: a rendered figure has dark ink as well as the white background.
  const stats = await sharp(png).stats();
  assert.ok(stats.channels[0]!.min < 100, 'no dark pixels');
}

function history(): EpochRecord[] {
  const records: EpochRecord[] = [];
  for (const round of [1, 2]) {
    for (const [phase, epochs] of [
      [1, 3],
      [2, 5],
    ] as const) {
      for (let epoch = 1; epoch <= epochs; epoch++) {
        const t = records.length;
        const metrics = (offset: number) => ({
          loss: 0.7 * Math.exp(-t / 5) + offset,
          accuracy: 0.6 + 0.3 * (1 - Math.exp(-t / 4)),
          typeI: 0.3 * Math.exp(-t / 6),
          typeII: 0.2 * Math.exp(-t / 6) + offset,
        });
        records.push({ phase, round, epoch, train: metrics(0), val: metrics(0.1) });
      }
    }
  }
  return records;
}

test('ROC figure: diagonal, AUC in the legend, renders at 520 x 520', async () => {
  const labels = [0, 0, 1, 1, 0, 1, 1, 0];
  const scores = [0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.6, 0.6];
  const auc = rocAuc(labels, scores);
  const svg = rocFigureSvg(rocCurve(labels, scores), auc, {
    interval: { low: 0.5, high: 1, level: 0.95 },
    operatingPoint: { fpr: 0.25, tpr: 0.75, threshold: 0.5 },
  });
  assert.match(svg, /AUC = 0\.844 \(95% CI 0\.500–1\.000\)/);
  assert.match(svg, /Chance/);
  assert.match(svg, /Threshold 0\.500/);
  await assertRendersAt(svg, 520, 520);
});

test('confusion matrix figure: counts and row-normalised cells, escaped class names', async () => {
  const svg = confusionMatrixSvg({ tp: 80, fp: 12, tn: 70, fn: 15 }, ['Non<COVID>', 'COVID & co']);
  for (const label of ['>70<', '>12<', '>15<', '>80<', '>0.85<', '>0.15<', '>0.16<', '>0.84<', '70 / 82', '80 / 95']) {
    assert.ok(svg.includes(label), `missing ${label}`);
  }
  assert.ok(svg.includes('Non&lt;COVID&gt;') && svg.includes('COVID &amp; co'));
  await assertRendersAt(svg, 860, 420);
  // A class with no images shows a dash, not NaN.
  const empty = confusionMatrixSvg({ tp: 3, fp: 0, tn: 0, fn: 1 });
  assert.ok(!empty.includes('NaN'));
  assert.ok(empty.includes('>–<'));
});

test('training history: four panels, phase boundaries, train and validation lines', async () => {
  const records = history();
  const svg = trainingHistorySvg(records);
  for (const title of ['Loss', 'Accuracy', 'Type I error', 'Type II error', 'train', 'validation']) {
    assert.ok(svg.includes(`>${title}`), `missing ${title}`);
  }
  // Four segments (phase 1/2 x round 1/2) -> three boundaries in each of the four panels.
  assert.equal(svg.match(/stroke-dasharray="3 3"/g)!.length, 3 * 4 + 1 /* legend */);
  // Train and validation polylines in each panel.
  assert.equal(svg.match(/<polyline/g)!.length, 8);
  assert.ok(!svg.includes('NaN'));
  await assertRendersAt(svg, 1000, 760);
});

test('training history tolerates a single epoch, missing validation and a non-finite loss', async () => {
  const one = trainingHistorySvg([{ phase: 'pretrain', round: 1, epoch: 1, train: { loss: 0.5, accuracy: 0.7, typeI: 0.2, typeII: 0.3 } }]);
  assert.ok(!one.includes('NaN'));
  await assertRendersAt(one, 1000, 760);
  const records = history();
  records[2]!.train.loss = Number.POSITIVE_INFINITY;
  const broken = trainingHistorySvg(records);
  assert.ok(!broken.includes('NaN') && !broken.includes('Infinity'));
  await assertRendersAt(broken, 1000, 760);
});
