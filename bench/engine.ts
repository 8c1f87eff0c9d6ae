// The engine against PyTorch (issue 8), MobileNetV2 224x224, batch 32, ms/image, medians:
//  - forward on the default engine (ONNX Runtime, intra-op threads = cores), and on the portable wasm engine
//    with one worker and with one per core;
//  - tail train step from a cached 7x7x160 (MobileNetV2's block_16 + conv_1x1 + GAP with ImageNet weights, and
//    a dense(1) logit) on the default engine (the ONNX Runtime training graph) with cores and with 1 intra-op
//    thread, and on the portable tfjs-wasm path with the training kernels, on this thread and data-parallel;
//  - full train step = trunk forward up to block_16 on ONNX Runtime + the tail step on the default engine.
// PyTorch (Debian's python3-torch, 2 threads, channels_last) runs before and after in the same process tree and
// the two are averaged; the tail step is also compared thread for thread (ours on 1 thread, PyTorch on 1), which
// suffers less from cores shared with other work. Ends with one JSON line. BENCH_RUNS sets the timed runs (default 5).
import { availableParallelism } from 'node:os';
import { loadBackbone } from '../src/engine/backbone.ts';
import { initWasmBackend, registerTrainingKernels } from '../src/engine/kernels/index.ts';
import { localBatchGradients, OnnxTail, TailWorkerPool } from '../src/engine/train/index.ts';
import {
  adamStep, BATCH, bracketedByTorch, CUT, FEATURE_SHAPE, mobileNetV2Tail, msPerImage, ratio, round, syntheticFeatures, syntheticImages,
} from './lib/engine.ts';

const RUNS = Number(process.env['BENCH_RUNS'] ?? 5);
const cores = availableParallelism();
const images = syntheticImages();
const batch = syntheticFeatures();

async function forwardMs(options: Parameters<typeof loadBackbone>[1], runs: number): Promise<number> {
  const backbone = await loadBackbone('mobilenet-v2', { batchSize: BATCH, ...options });
  try {
    return await msPerImage(() => backbone.forward(images, BATCH), { warmup: 1, runs });
  } finally {
    await backbone.dispose();
  }
}

async function ours() {
  const forward = await forwardMs({}, RUNS);
  console.log(`forward, onnxruntime-node, ${cores} intra-op threads: ${forward.toFixed(2)} ms/image`);
  // The wasm engine is an order of magnitude slower; three timed runs keep the bench short.
  const forwardWasm = await forwardMs({ engine: 'wasm', workers: 1 }, 3);
  console.log(`forward, tfjs-wasm, 1 worker: ${forwardWasm.toFixed(2)} ms/image`);
  const forwardWasmWorkers = await forwardMs({ engine: 'wasm', workers: cores }, 3);
  console.log(`forward, tfjs-wasm, ${cores} workers: ${forwardWasmWorkers.toFixed(2)} ms/image`);

  registerTrainingKernels();
  await initWasmBackend();
  const model = await mobileNetV2Tail();
  const onnxTail = await OnnxTail.create(model, FEATURE_SHAPE, { threads: cores });
  const onnxTailOne = await OnnxTail.create(model, FEATURE_SHAPE, { threads: 1 });
  const onnx = adamStep(model, onnxTail.batchGradients);
  const onnxOne = adamStep(model, onnxTailOne.batchGradients);
  const local = adamStep(model, localBatchGradients(model, FEATURE_SHAPE));
  const pool = cores > 1 ? await TailWorkerPool.create(model, cores - 1) : null;
  const parallel = pool ? adamStep(model, pool.batchGradients(model, FEATURE_SHAPE)) : null;
  try {
    const tail = await msPerImage(() => onnx.step(batch), { runs: RUNS });
    console.log(`tail step, onnxruntime-node, ${cores} intra-op threads: ${tail.toFixed(2)} ms/image`);
    const tailOne = await msPerImage(() => onnxOne.step(batch), { runs: RUNS });
    console.log(`tail step, onnxruntime-node, 1 thread: ${tailOne.toFixed(2)} ms/image`);
    const tailWasmOne = await msPerImage(() => local.step(batch), { runs: RUNS });
    console.log(`tail step, tfjs-wasm, 1 thread: ${tailWasmOne.toFixed(2)} ms/image`);
    const tailWasmParallel = parallel ? await msPerImage(() => parallel.step(batch), { runs: RUNS }) : null;
    if (tailWasmParallel !== null) console.log(`tail step, tfjs-wasm, ${cores} threads data-parallel: ${tailWasmParallel.toFixed(2)} ms/image`);
    const trunk = await loadBackbone('mobilenet-v2', { cut: CUT, batchSize: BATCH });
    let train: number;
    try {
      train = await msPerImage(async () => onnx.step({ features: await trunk.forward(images, BATCH), labels: batch.labels }), { runs: RUNS });
    } finally {
      await trunk.dispose();
    }
    console.log(`train step, trunk + tail on onnxruntime-node: ${train.toFixed(2)} ms/image`);
    return { forward, forwardWasm, forwardWasmWorkers, tail, tailOne, tailWasmOne, tailWasmParallel, train };
  } finally {
    for (const step of [onnx, onnxOne, local, parallel]) step?.dispose();
    await Promise.all([onnxTail.dispose(), onnxTailOne.dispose(), pool?.terminate()]);
  }
}

const { ours: r, torch, before, after } = await bracketedByTorch(['forward', 'tail', 'train', 'tail1'], ours, { warmup: 2, runs: RUNS });
const t = torch ?? {};
const cell = (v: number | null | undefined): string => (v === null || v === undefined ? '-' : v.toFixed(2));
const x = (ours: number | null, reference: number | undefined): string => {
  const value = ratio(ours, reference ?? null);
  return value === null ? '-' : `${value.toFixed(2)}x`;
};
console.log('');
console.log(`MobileNetV2 224x224, batch ${BATCH}, ms/image, medians of ${RUNS} runs (wasm forward: 3); ${cores} cores`);
console.log('| measurement | covid-ct | PyTorch | ratio | target |');
console.log('|---|---|---|---|---|');
console.log(`| forward, onnxruntime-node (default engine) | ${cell(r.forward)} | ${cell(t.forward_ms)} | ${x(r.forward, t.forward_ms)} | <= 0.3x |`);
console.log(`| forward, tfjs-wasm, 1 worker | ${cell(r.forwardWasm)} | ${cell(t.forward_ms)} | ${x(r.forwardWasm, t.forward_ms)} | |`);
console.log(`| forward, tfjs-wasm, ${cores} workers | ${cell(r.forwardWasmWorkers)} | ${cell(t.forward_ms)} | ${x(r.forwardWasmWorkers, t.forward_ms)} | |`);
console.log(`| tail step from 7x7x160, onnxruntime-node (default engine) | ${cell(r.tail)} | ${cell(t.tail_step_ms)} | ${x(r.tail, t.tail_step_ms)} | <= 2x |`);
console.log(`| tail step, onnxruntime-node 1 thread vs PyTorch 1 thread | ${cell(r.tailOne)} | ${cell(t.tail_step_1thread_ms)} | ${x(r.tailOne, t.tail_step_1thread_ms)} | |`);
console.log(`| tail step, tfjs-wasm, 1 thread | ${cell(r.tailWasmOne)} | ${cell(t.tail_step_ms)} | ${x(r.tailWasmOne, t.tail_step_ms)} | |`);
if (r.tailWasmParallel !== null) console.log(`| tail step, tfjs-wasm, ${cores} threads | ${cell(r.tailWasmParallel)} | ${cell(t.tail_step_ms)} | ${x(r.tailWasmParallel, t.tail_step_ms)} | |`);
console.log(`| full train step = trunk forward + tail step | ${cell(r.train)} | ${cell(t.train_step_ms)} | ${x(r.train, t.train_step_ms)} | <= 0.7x |`);
if (before && after) {
  const pair = (k: keyof typeof before) => `${cell(before[k])} / ${cell(after[k])}`;
  console.log(`PyTorch before / after: forward ${pair('forward_ms')}, tail step ${pair('tail_step_ms')}, train step ${pair('train_step_ms')}, tail step 1 thread ${pair('tail_step_1thread_ms')}`);
}
const orNull = (v: number | undefined): number | null => (v === undefined ? null : round(v));
console.log(
  JSON.stringify({
    bench: 'engine',
    forward_ms: round(r.forward),
    forward_wasm_ms: round(r.forwardWasm),
    forward_wasm_workers_ms: round(r.forwardWasmWorkers),
    tail_step_ms: round(r.tail),
    train_step_ms: round(r.train),
    torch_forward_ms: orNull(t.forward_ms),
    torch_tail_step_ms: orNull(t.tail_step_ms),
    torch_train_step_ms: orNull(t.train_step_ms),
    forward_ratio: ratio(r.forward, t.forward_ms ?? null),
    tail_step_ratio: ratio(r.tail, t.tail_step_ms ?? null),
    train_step_ratio: ratio(r.train, t.train_step_ms ?? null),
    tail_step_1thread_ms: round(r.tailOne),
    torch_tail_step_1thread_ms: orNull(t.tail_step_1thread_ms),
    tail_step_1thread_ratio: ratio(r.tailOne, t.tail_step_1thread_ms ?? null),
    tail_step_wasm_ms: round(r.tailWasmOne),
    tail_step_wasm_workers_ms: r.tailWasmParallel === null ? null : round(r.tailWasmParallel),
    workers: cores,
  }),
);
