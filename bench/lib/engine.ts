// Shared pieces of the engine benchmarks (bench/engine*.ts): timing, the MobileNetV2 tail that training
// uses, and the PyTorch reference (Debian's python3-torch, channels_last, 2 threads) measured in the same run.
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { buildTfjsModel } from '../../src/engine/backbone.ts';
import { trainableVariables } from '../../src/engine/train/index.ts';
import type { BatchGradientFn } from '../../src/engine/train/index.ts';

export const BATCH = 32;
export const IMAGE_SHAPE = [224, 224, 3] as const;
/** The cached activation the tail trains from: MobileNetV2 before block_16. */
export const CUT = 'block_16';
export const FEATURE_SHAPE = [7, 7, 160];

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export const round = (value: number): number => Math.round(value * 100) / 100;
export const ratio = (ours: number | null, reference: number | null): number | null => (ours === null || reference === null ? null : round(ours / reference));

/** Median wall time of `fn` in ms per image of a batch of BATCH, after `warmup` untimed runs. */
export async function msPerImage(fn: () => Promise<unknown>, { warmup = 2, runs = 7 } = {}): Promise<number> {
  const times: number[] = [];
  for (let run = 0; run < warmup + runs; run++) {
    const start = performance.now();
    await fn();
    if (run >= warmup) times.push(performance.now() - start);
  }
  return median(times) / BATCH;
}

/** A deterministic batch of BATCH images, RGB 0-255, NHWC. */
export function syntheticImages(): Float32Array {
  return Float32Array.from({ length: BATCH * IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2] }, (_, i) => (i * 7919) % 256);
}

/** A deterministic batch of BATCH cut activations and alternating labels. */
export function syntheticFeatures(): { features: Float32Array; labels: Float32Array } {
  const perExample = FEATURE_SHAPE.reduce((a, b) => a * b, 1);
  return {
    features: Float32Array.from({ length: BATCH * perExample }, (_, i) => Math.abs(Math.sin(i)) * 4),
    labels: Float32Array.from({ length: BATCH }, (_, i) => i % 2),
  };
}

/**
 * The tail that training fine-tunes: MobileNetV2's own layers from block_16 (block_16, conv_1x1, global
 * average pooling, ImageNet weights) and a dense(1) logit. Build it after choosing the tfjs backend.
 */
export async function mobileNetV2Tail(): Promise<tfl.LayersModel> {
  const backbone = await buildTfjsModel('mobilenet-v2', { from: CUT });
  const logit = tfl.layers.dense({ units: 1, name: 'logit', kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }) });
  return tfl.model({ inputs: backbone.inputs, outputs: logit.apply(backbone.outputs[0]!) as tfl.SymbolicTensor });
}

/**
 * One Adam step per call on `model` from the features `batch()` gives, gradients from `gradientsOf`; the step
 * includes reading a weight back so the time covers the whole update.
 */
export function adamStep(model: tfl.LayersModel, gradientsOf: BatchGradientFn): { step: (batch: { features: Float32Array; labels: Float32Array }) => Promise<void>; dispose: () => void } {
  const variables = trainableVariables(model);
  const optimizer = tf.train.adam(1e-4);
  return {
    async step({ features, labels }) {
      const { gradients } = await gradientsOf(features, labels);
      optimizer.applyGradients(variables.map((v, i) => ({ name: v.name, tensor: gradients[i]! })));
      tf.dispose(gradients);
      await variables[0]!.data();
    },
    dispose: () => optimizer.dispose(),
  };
}

export type TorchTimes = { forward_ms: number; tail_step_ms: number; train_step_ms: number; tail_step_1thread_ms: number };
/** 'tail1': the tail step on one thread, a ratio that suffers less from cores shared with other work. */
export type TorchMeasurement = 'forward' | 'tail' | 'train' | 'tail1';

/**
 * A torchvision-free MobileNetV2 (random weights; the time does not depend on them) with the same tail split:
 * layers[:17] is the trunk before block_16, layers[17:] block_16 + conv 1x1 + GAP, then Linear(1280, 1).
 * BatchNorm runs in inference mode in the trained tail, as on the tfjs side. Prints one JSON line.
 */
const TORCH_SCRIPT = String.raw`
import json, sys, time, torch, torch.nn as nn
torch.set_num_threads(2); torch.manual_seed(0)
BATCH, WARMUP, RUNS, WHAT = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].split(',')
def cbr(cin, cout, k, s, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout, eps=1e-3)]
    if act: layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)
class Block(nn.Module):
    def __init__(self, cin, cout, s, t):
        super().__init__()
        hidden = cin * t
        layers = [] if t == 1 else [cbr(cin, hidden, 1, 1)]
        layers += [cbr(hidden, hidden, 3, s, groups=hidden), cbr(hidden, cout, 1, 1, act=False)]
        self.body = nn.Sequential(*layers)
        self.residual = s == 1 and cin == cout
    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)
layers = [cbr(3, 32, 3, 2)]
cin = 32
for t, c, n, s in [(1,16,1,1),(6,24,2,2),(6,32,3,2),(6,64,4,2),(6,96,3,1),(6,160,3,2),(6,320,1,1)]:
    for i in range(n):
        layers.append(Block(cin, c, s if i == 0 else 1, t)); cin = c
layers += [cbr(320, 1280, 1, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
cl = torch.channels_last
net = nn.Sequential(*layers).eval().to(memory_format=cl)
trunk = nn.Sequential(*layers[:17]).eval().to(memory_format=cl)
tail = nn.Sequential(*layers[17:], nn.Linear(1280, 1)).to(memory_format=cl).train()
for m in tail.modules():
    if isinstance(m, nn.BatchNorm2d): m.eval()
opt = torch.optim.Adam(tail.parameters(), lr=1e-4)
loss_fn = nn.BCEWithLogitsLoss()
x = torch.rand(BATCH, 3, 224, 224).mul(255).to(memory_format=cl)
features = (torch.rand(BATCH, 160, 7, 7) * 4).to(memory_format=cl)
y = (torch.arange(BATCH) % 2).float().unsqueeze(1)
def tail_step(f):
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(tail(f), y); loss.backward(); opt.step()
def train_step():
    with torch.no_grad(): f = trunk(x)
    tail_step(f)
def forward():
    with torch.no_grad(): net(x)
def ms_per_image(fn):
    times = []
    for run in range(WARMUP + RUNS):
        start = time.perf_counter(); fn()
        if run >= WARMUP: times.append((time.perf_counter() - start) * 1000)
    times.sort(); n = len(times)
    return (times[n // 2] if n % 2 else (times[n // 2 - 1] + times[n // 2]) / 2) / BATCH
out = {}
if 'forward' in WHAT: out['forward_ms'] = ms_per_image(forward)
if 'tail' in WHAT: out['tail_step_ms'] = ms_per_image(lambda: tail_step(features))
if 'train' in WHAT: out['train_step_ms'] = ms_per_image(train_step)
if 'tail1' in WHAT:
    torch.set_num_threads(1); out['tail_step_1thread_ms'] = ms_per_image(lambda: tail_step(features))
print(json.dumps(out))
`;

const PYTHON = '/usr/bin/python3';

/** Why the PyTorch reference cannot run here, or null when it can. */
export function torchUnavailable(): string | null {
  const probe = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status === 0) return null;
  return `${PYTHON} cannot import torch (${(probe.stderr || probe.error?.message || '').trim().split('\n').at(-1)}); apt-get install -y python3-torch`;
}

/** The PyTorch reference for the chosen measurements, ms/image at batch BATCH; throws when the script fails. */
export function torchReference(what: readonly TorchMeasurement[], { warmup = 2, runs = 7 } = {}): Partial<TorchTimes> {
  const run = spawnSync(PYTHON, ['-c', TORCH_SCRIPT, String(BATCH), String(warmup), String(runs), what.join(',')], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`PyTorch reference failed: ${(run.stderr || run.error?.message || '').trim().split('\n').at(-1)}`);
  return JSON.parse(run.stdout.trim().split('\n').at(-1)!) as Partial<TorchTimes>;
}

/**
 * The reference measured before and after our own measurements (the cores are shared, so this halves the
 * effect of a neighbour starting or stopping), averaged; null values when PyTorch is unavailable.
 */
export async function bracketedByTorch<T>(
  what: readonly TorchMeasurement[],
  ours: () => Promise<T>,
  options: { warmup?: number; runs?: number } = {},
): Promise<{ ours: T; torch: Partial<TorchTimes> | null; before: Partial<TorchTimes> | null; after: Partial<TorchTimes> | null }> {
  const missing = torchUnavailable();
  if (missing) console.log(`PyTorch reference skipped: ${missing}; ratios are null`);
  const measure = (): Partial<TorchTimes> | null => {
    if (missing) return null;
    try {
      return torchReference(what, options);
    } catch (error) {
      console.log(`${(error as Error).message}; ratios are null`);
      return null;
    }
  };
  const before = measure();
  const result = await ours();
  const after = measure();
  let torch: Partial<TorchTimes> | null = null;
  if (before && after) {
    torch = {};
    for (const key of Object.keys(before) as (keyof TorchTimes)[]) torch[key] = (before[key]! + after[key]!) / 2;
  }
  return { ours: result, torch, before, after };
}
