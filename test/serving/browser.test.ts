// End to end in a real browser (Debian chromium through playwright-core): open the page, upload a CT image,
// see the probability, the label and the Grad-CAM heatmap.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import type { BrowserContext } from 'playwright-core';
import { loadModel } from '../../src/inference/model.ts';
import type { LoadedModel } from '../../src/inference/model.ts';
import { tempDir } from '../data/fixtures.ts';
import { testImages, trainTinyModel } from '../inference/fixtures.ts';
import { serve } from './helpers.ts';
import type { Served } from './helpers.ts';

const CHROMIUM = '/usr/bin/chromium';
let model: LoadedModel;
let server: Served;
let browser: BrowserContext;

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does this)`);
  model = await loadModel(await trainTinyModel());
  server = await serve(model);
  // A fresh profile every run; playwright passes it to chromium as --user-data-dir.
  browser = await chromium.launchPersistentContext(tempDir('covid-ct-chromium-'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
after(async () => {
  await browser?.close();
  await server?.close();
  await model?.dispose();
});

test('the page shows the disclaimer and the model card; an uploaded image gets a probability, a label and a heatmap', async () => {
  const page = await browser.newPage();
  await page.goto(server.url);
  assert.match((await page.textContent('#disclaimer')) ?? '', /Research software, not a diagnostic device\./);
  await page.waitForSelector('#card table');
  assert.match((await page.textContent('#card')) ?? '', new RegExp(model.card.id));

  await page.setInputFiles('#file', testImages('CT_COVID', 1)[0]!);
  await page.waitForSelector('#heatmap:not([hidden])', { timeout: 30_000 });
  const probability = Number(await page.textContent('#probability'));
  assert.ok(probability >= 0 && probability <= 1, `probability ${probability}`);
  assert.match((await page.textContent('#label')) ?? '', /^(COVID|non-COVID)$/);
  const heatmap = await page.$eval('#heatmap', (img) => ({ src: (img as HTMLImageElement).src, width: (img as HTMLImageElement).naturalWidth }));
  assert.match(heatmap.src, /^data:image\/png;base64,/);
  assert.equal(heatmap.width, model.card.imageSize);
  await page.waitForSelector('#recent tbody tr');
  assert.equal(server.log.count(), 1);
});
