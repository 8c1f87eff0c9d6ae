import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULTS, resolveConfig } from '../../src/config/index.ts';
import { stageSchedule } from '../../src/training/train.ts';

test('preprocess defaults and validation naming the option', () => {
  assert.deepEqual(DEFAULTS.preprocess, { grayscale: true, jpegReencode: true, jpegQuality: [60, 95], lungCrop: false, lungCropMargin: 0.05, intensity: 'none' });
  assert.deepEqual(resolveConfig({ preprocess: { lungCrop: true, jpegQuality: [70, 90] } }).preprocess.jpegQuality, [70, 90]);
  assert.throws(() => resolveConfig({ preprocess: { jpegQuality: [95, 60] } }), /preprocess\.jpegQuality must be two integers/);
  assert.throws(() => resolveConfig({ preprocess: { jpegQuality: [60, 101] } }), /preprocess\.jpegQuality/);
  assert.throws(() => resolveConfig({ preprocess: { lungCropMargin: 0.5 } }), /preprocess\.lungCropMargin must be in \[0, 0\.5\)/);
  assert.throws(() => resolveConfig({ preprocess: { grayscale: 'yes' as unknown as boolean } }), /preprocess\.grayscale must be true or false/);
  assert.throws(() => resolveConfig({ preprocess: { crop: true } as never }), /unknown option 'preprocess\.crop'; valid options: grayscale, jpegReencode/);
  assert.equal(resolveConfig({ split: 'source' }).split, 'source');
});

test('the pre-training stage has its own schedule, validated like the main one', () => {
  assert.deepEqual(DEFAULTS.train.pretrainSchedule, { rounds: 1, phase1: { epochs: 10, learningRate: 1e-3 }, phase2: { epochs: 10, learningRate: 1e-4 }, views: 4 });
  const config = resolveConfig({ train: { pretrainSchedule: { phase2: { epochs: 3 } } } });
  assert.equal(config.train.pretrainSchedule.phase2.epochs, 3);
  assert.equal(config.train.pretrainSchedule.phase2.learningRate, 1e-4);
  assert.equal(stageSchedule({ name: 'sars', train: [], val: [], pretraining: true }, config).phase2.epochs, 3);
  assert.equal(stageSchedule({ name: 'covid-ct', train: [], val: [] }, config).phase2.epochs, 30);
  assert.throws(() => resolveConfig({ train: { pretrainSchedule: { views: 0 } } }), /train\.pretrainSchedule\.views must be an integer in \[1, 64\]/);
  assert.throws(() => resolveConfig({ train: { pretrainSchedule: { phase1: { learningRate: 2 } } } }), /train\.pretrainSchedule\.phase1\.learningRate must be in \(0, 1\)/);
});
