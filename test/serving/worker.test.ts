// The prediction worker: the same probabilities as the server's own copy of the model, clear start errors, and
// a closed worker refuses work instead of hanging.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeImage } from '../../src/data/decode.ts';
import { loadModel } from '../../src/inference/model.ts';
import { PredictionWorker } from '../../src/serving/worker-model.ts';
import { tempDir } from '../data/fixtures.ts';
import { testImages, trainTinyModel } from '../inference/fixtures.ts';

test('the worker predicts what the model predicts; once closed it rejects', async () => {
  const model = await loadModel(await trainTinyModel());
  const worker = await PredictionWorker.start(model);
  try {
    const images = await Promise.all([...testImages('CT_COVID', 2), ...testImages('CT_NonCOVID', 2)].map((path) => decodeImage(path, { size: model.card.imageSize })));
    const [expected, actual] = await Promise.all([model.predict(images), worker.predict(images)]);
    assert.equal(actual.length, 4);
    actual.forEach((p, i) => assert.ok(Math.abs(p - expected[i]!) < 1e-6, `image ${i}: ${p} vs ${expected[i]}`));
  } finally {
    await worker.close();
    await model.dispose();
  }
  assert.equal(worker.failed, true);
  await assert.rejects(worker.predict([]), /prediction worker exited/);
});

test('a worker that cannot load its model says which directory and why', async () => {
  const dir = tempDir('covid-ct-no-model-');
  await assert.rejects(PredictionWorker.start({ dir, loadOptions: {} }), (error: Error) => error.message.includes(dir) && /not a covid-ct model directory/.test(error.message));
});
