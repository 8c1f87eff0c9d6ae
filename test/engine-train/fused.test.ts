// Fused conv + BatchNorm + ReLU blocks against tfjs autodiff of the same layers, layer by layer.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initWasmBackend, registerTrainingKernels } from '../../src/engine/kernels/index.ts';
import { localBatchGradients, runTail } from '../../src/engine/train/index.ts';
import { planFusion } from '../../src/engine/train/fusion-plan.ts';
import { Rng } from '../../src/data/random.ts';

before(async () => {
  registerTrainingKernels();
  await initWasmBackend();
});

/** A MobileNetV2-like tail in miniature, with non-trivial BatchNorm statistics and a frozen BN. */
function miniTail(): tfl.LayersModel {
  let seed = 11;
  const init = () => tfl.initializers.glorotUniform({ seed: seed++ });
  const input = tfl.input({ shape: [7, 5, 6] });
  const bn = (name: string, trainable = true) => tfl.layers.batchNormalization({ name, trainable, epsilon: 1e-3 });
  const layers: tfl.layers.Layer[] = [
    tfl.layers.conv2d({ filters: 12, kernelSize: 1, useBias: false, kernelInitializer: init(), name: 'expand' }), bn('expand_bn'),
    tfl.layers.reLU({ maxValue: 6, name: 'expand_relu' }),
    tfl.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'same', useBias: false, depthwiseInitializer: init(), name: 'dw' }),
    bn('dw_bn', false), tfl.layers.reLU({ maxValue: 6, name: 'dw_relu' }),
    tfl.layers.conv2d({ filters: 8, kernelSize: 1, useBias: false, kernelInitializer: init(), name: 'project' }), bn('project_bn'),
    tfl.layers.conv2d({ filters: 10, kernelSize: 3, padding: 'valid', activation: 'relu', kernelInitializer: init(), name: 'head' }),
    tfl.layers.globalAveragePooling2d({ name: 'pool' }),
    tfl.layers.dense({ units: 1, kernelInitializer: init(), name: 'logit' }),
  ];
  let x: tfl.SymbolicTensor = input;
  for (const layer of layers) x = layer.apply(x) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: x });
  const rng = new Rng(5);
  for (const layer of model.layers.filter((l) => l.getClassName() === 'BatchNormalization')) {
    const n = layer.getWeights()[0]!.shape[0]!;
    const values = (offset: number, spread: number) => tf.tensor1d(Array.from({ length: n }, () => offset + rng.next() * spread));
    layer.setWeights([values(0.5, 1), values(-0.5, 1), values(-0.3, 0.6), values(0.2, 2)]);
  }
  return model;
}

test('the fusion plan absorbs BatchNorm and ReLU6 into the convolutions', () => {
  const plan = planFusion(miniTail());
  const byName = new Map([...plan].map(([layer, group]) => [layer.name, group]));
  assert.deepEqual([...byName.keys()], ['expand', 'dw', 'project', 'head']);
  assert.deepEqual(byName.get('expand')!.absorbed.map((l) => l.name), ['expand_bn', 'expand_relu']);
  assert.equal(byName.get('dw')!.spec.activation, 'relu6');
  assert.equal(byName.get('project')!.spec.activation, 'linear');
  assert.equal(byName.get('head')!.spec.activation, 'relu');
});

test('fused blocks give the same logits and gradients as the layers run one by one', async () => {
  const model = miniTail();
  const rng = new Rng(9);
  const features = Float32Array.from({ length: 6 * 7 * 5 * 6 }, () => rng.next() * 3 - 1);
  const labels = Float32Array.from([0, 1, 1, 0, 1, 0]);
  const x = tf.tensor(features, [6, 7, 5, 6]);
  const fusedLogits = runTail(model, x, false);
  const plainLogits = runTail(model, x, false, { fuse: false });
  const scale = Math.max(...Array.from(plainLogits.dataSync(), Math.abs));
  const diff = Math.max(...Array.from(fusedLogits.dataSync(), (v, i) => Math.abs(v - plainLogits.dataSync()[i]!)));
  assert.ok(diff / scale < 1e-4, `logits differ by ${diff / scale}`);
  tf.dispose([x, fusedLogits, plainLogits]);

  const fused = await localBatchGradients(model, [7, 5, 6])(features, labels);
  const plain = await localBatchGradients(model, [7, 5, 6], { fuse: false })(features, labels);
  assert.ok(Math.abs(fused.loss - plain.loss) < 1e-5);
  assert.equal(fused.gradients.length, model.trainableWeights.length);
  fused.gradients.forEach((g, i) => {
    const a = g.dataSync();
    const b = plain.gradients[i]!.dataSync();
    const gradScale = Math.max(1e-6, ...Array.from(b, Math.abs));
    const gradDiff = Math.max(...Array.from(a, (v, k) => Math.abs(v - b[k]!)));
    assert.ok(gradDiff / gradScale < 1e-4, `${model.trainableWeights[i]!.name}: relative difference ${gradDiff / gradScale}`);
  });
  tf.dispose([...fused.gradients, ...plain.gradients]);
});
