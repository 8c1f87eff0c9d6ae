// Tail train step of a MobileNetV2-like tail from a cached 7x7x160 activation (block_16 + Conv_1 + GAP +
// dense(1), batch 32) on tfjs-wasm with the training kernels, on one thread and data-parallel, against Debian's
// PyTorch on the same machine in the same run. Ends with one JSON line.
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initWasmBackend, registerTrainingKernels } from '../src/engine/kernels/index.ts';
import { localBatchGradients, trainableVariables, TailWorkerPool } from '../src/engine/train/index.ts';
import type { BatchGradientFn } from '../src/engine/train/index.ts';

const BATCH = 32;
const FEATURE_SHAPE = [7, 7, 160];
const STEPS = Number(process.env['BENCH_STEPS'] ?? 8);
const WARMUP = 2;

function mobileNetV2Tail(): tfl.LayersModel {
  let seed = 1;
  const init = () => tfl.initializers.heNormal({ seed: seed++ });
  const bn = (name: string) => tfl.layers.batchNormalization({ epsilon: 1e-3, momentum: 0.999, name });
  const input = tfl.input({ shape: FEATURE_SHAPE });
  const layers: tfl.layers.Layer[] = [
    tfl.layers.conv2d({ filters: 960, kernelSize: 1, useBias: false, kernelInitializer: init(), name: 'block_16_expand' }),
    bn('block_16_expand_BN'), tfl.layers.reLU({ maxValue: 6, name: 'block_16_expand_relu' }),
    tfl.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', useBias: false, depthwiseInitializer: init(), name: 'block_16_depthwise' }),
    bn('block_16_depthwise_BN'), tfl.layers.reLU({ maxValue: 6, name: 'block_16_depthwise_relu' }),
    tfl.layers.conv2d({ filters: 320, kernelSize: 1, useBias: false, kernelInitializer: init(), name: 'block_16_project' }),
    bn('block_16_project_BN'),
    tfl.layers.conv2d({ filters: 1280, kernelSize: 1, useBias: false, kernelInitializer: init(), name: 'Conv_1' }),
    bn('Conv_1_bn'), tfl.layers.reLU({ maxValue: 6, name: 'out_relu' }),
    tfl.layers.globalAveragePooling2d({ name: 'pool' }),
    tfl.layers.dropout({ rate: 0.2, name: 'dropout' }),
    tfl.layers.dense({ units: 1, kernelInitializer: init(), name: 'logit' }),
  ];
  let x: tfl.SymbolicTensor = input;
  for (const layer of layers) x = layer.apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: x });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function timeSteps(model: tfl.LayersModel, gradientsOf: BatchGradientFn): Promise<number> {
  const variables = trainableVariables(model);
  const optimizer = tf.train.adam(1e-4);
  const features = Float32Array.from({ length: BATCH * 7 * 7 * 160 }, (_, i) => Math.abs(Math.sin(i)) * 4);
  const labels = Float32Array.from({ length: BATCH }, (_, i) => i % 2);
  const times: number[] = [];
  for (let step = 0; step < WARMUP + STEPS; step++) {
    const start = performance.now();
    const { gradients } = await gradientsOf(features, labels);
    optimizer.applyGradients(variables.map((v, i) => ({ name: v.name, tensor: gradients[i]! })));
    tf.dispose(gradients);
    await variables[0]!.data();
    if (step >= WARMUP) times.push(performance.now() - start);
  }
  optimizer.dispose();
  return median(times) / BATCH;
}

const TORCH_SCRIPT = String.raw`
import json, sys, time, torch, torch.nn as nn
torch.set_num_threads(2); torch.manual_seed(0)
def cbr(i, o, k=1, groups=1, relu=True):
    layers = [nn.Conv2d(i, o, k, padding=k // 2, groups=groups, bias=False), nn.BatchNorm2d(o, eps=1e-3)]
    return layers + ([nn.ReLU6()] if relu else [])
tail = nn.Sequential(*cbr(160, 960), *cbr(960, 960, 3, groups=960), *cbr(960, 320, relu=False), *cbr(320, 1280),
                     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(1280, 1))
tail = tail.to(memory_format=torch.channels_last).train()
for m in tail.modules():
    if isinstance(m, nn.BatchNorm2d): m.eval()  # inference-mode BN, as on the tfjs side
opt = torch.optim.Adam(tail.parameters(), lr=1e-4)
x = torch.rand(32, 160, 7, 7).to(memory_format=torch.channels_last) * 4
y = (torch.arange(32) % 2).float().unsqueeze(1)
loss_fn = nn.BCEWithLogitsLoss()
times = []
for step in range(int(sys.argv[1]) + 2):
    t = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(tail(x), y); loss.backward(); opt.step()
    if step >= 2: times.append(time.perf_counter() - t)
times.sort(); n = len(times)
print(json.dumps({"ms_per_image": 1000 * (times[n // 2] if n % 2 else (times[n // 2 - 1] + times[n // 2]) / 2) / 32}))
`;

function torchTailStep(): number | null {
  const run = spawnSync('/usr/bin/python3', ['-c', TORCH_SCRIPT, String(STEPS * 2)], { encoding: 'utf8' });
  if (run.status !== 0) {
    console.log(`PyTorch reference unavailable: ${(run.stderr || run.error?.message || '').trim().split('\n').at(-1)}`);
    return null;
  }
  return (JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { ms_per_image: number }).ms_per_image;
}

// The machine's cores are shared: PyTorch runs before and after the tfjs measurements and the two are averaged.
const torchBefore = torchTailStep();
registerTrainingKernels();
await initWasmBackend();
const model = mobileNetV2Tail();
const oneThread = await timeSteps(model, localBatchGradients(model, FEATURE_SHAPE));
console.log(`tfjs-wasm tail step, 1 thread: ${oneThread.toFixed(2)} ms/image`);
const threads = Math.max(1, availableParallelism());
let parallel: number | null = null;
if (threads > 1) {
  const pool = await TailWorkerPool.create(model, threads - 1);
  try {
    parallel = await timeSteps(model, pool.batchGradients(model, FEATURE_SHAPE));
  } finally {
    await pool.terminate();
  }
  console.log(`tfjs-wasm tail step, ${threads} threads (data-parallel): ${parallel.toFixed(2)} ms/image`);
}
const torchAfter = torchTailStep();
const torch = torchBefore !== null && torchAfter !== null ? (torchBefore + torchAfter) / 2 : null;
if (torch !== null) {
  console.log(`PyTorch 2 threads, channels_last tail step: ${torch.toFixed(2)} ms/image (before ${torchBefore!.toFixed(2)}, after ${torchAfter!.toFixed(2)})`);
}
const best = parallel !== null && parallel < oneThread ? { ms: parallel, workers: threads } : { ms: oneThread, workers: 1 };
const round = (v: number) => Math.round(v * 100) / 100;
console.log(JSON.stringify({
  bench: 'engine-train',
  tail_step_ms: round(best.ms),
  torch_tail_step_ms: torch === null ? null : round(torch),
  ratio: torch === null ? null : round(best.ms / torch),
  workers: best.workers,
}));
