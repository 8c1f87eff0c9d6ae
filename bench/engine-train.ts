// Tail train step from a cached 7x7x160 activation (MobileNetV2's block_16 + conv_1x1 + GAP with ImageNet
// weights, and a dense(1) logit; batch 32) on tfjs-wasm with the training kernels, on one thread and
// data-parallel, against Debian's PyTorch in the same run. `npm run bench -- engine` measures the whole table.
import { availableParallelism } from 'node:os';
import { initWasmBackend, registerTrainingKernels } from '../src/engine/kernels/index.ts';
import { localBatchGradients, TailWorkerPool } from '../src/engine/train/index.ts';
import { adamStep, bracketedByTorch, FEATURE_SHAPE, mobileNetV2Tail, msPerImage, ratio, round, syntheticFeatures } from './lib/engine.ts';

const RUNS = Number(process.env['BENCH_STEPS'] ?? 8);
const threads = availableParallelism();

const { ours, torch } = await bracketedByTorch(['tail'], async () => {
  registerTrainingKernels();
  await initWasmBackend();
  const model = await mobileNetV2Tail();
  const batch = syntheticFeatures();
  const local = adamStep(model, localBatchGradients(model, FEATURE_SHAPE));
  const oneThread = await msPerImage(() => local.step(batch), { runs: RUNS });
  local.dispose();
  console.log(`tfjs-wasm tail step, 1 thread: ${oneThread.toFixed(2)} ms/image`);
  if (threads === 1) return { oneThread, parallel: null };
  const pool = await TailWorkerPool.create(model, threads - 1);
  const shared = adamStep(model, pool.batchGradients(model, FEATURE_SHAPE));
  try {
    const parallel = await msPerImage(() => shared.step(batch), { runs: RUNS });
    console.log(`tfjs-wasm tail step, ${threads} threads (data-parallel): ${parallel.toFixed(2)} ms/image`);
    return { oneThread, parallel };
  } finally {
    shared.dispose();
    await pool.terminate();
  }
}, { runs: RUNS * 2 });
const torchMs = torch?.tail_step_ms ?? null;
if (torchMs !== null) console.log(`PyTorch 2 threads, channels_last tail step: ${torchMs.toFixed(2)} ms/image`);
const best = ours.parallel !== null && ours.parallel < ours.oneThread ? { ms: ours.parallel, workers: threads } : { ms: ours.oneThread, workers: 1 };
console.log(JSON.stringify({ bench: 'engine-train', tail_step_ms: round(best.ms), torch_tail_step_ms: torchMs === null ? null : round(torchMs), ratio: ratio(best.ms, torchMs), workers: best.workers }));
