// Tail train step from a cached 7x7x160 activation (MobileNetV2's block_16 + conv_1x1 + GAP with ImageNet
// weights, and a dense(1) logit; batch 32) on ONNX Runtime (the default engine) and on tfjs-wasm with the
// training kernels on one thread, against Debian's PyTorch in the same run. `npm run bench -- engine` measures
// the whole table.
import { availableParallelism } from 'node:os';
import { initWasmBackend, registerTrainingKernels } from '../src/engine/kernels/index.ts';
import { localBatchGradients, OnnxTail } from '../src/engine/train/index.ts';
import { adamStep, bracketedByTorch, FEATURE_SHAPE, mobileNetV2Tail, msPerImage, ratio, round, syntheticFeatures } from './lib/engine.ts';

const RUNS = Number(process.env['BENCH_STEPS'] ?? 8);
const threads = availableParallelism();

const { ours, torch } = await bracketedByTorch(['tail'], async () => {
  registerTrainingKernels();
  await initWasmBackend();
  const model = await mobileNetV2Tail();
  const batch = syntheticFeatures();
  const tail = await OnnxTail.create(model, FEATURE_SHAPE, { threads });
  const onnx = adamStep(model, tail.batchGradients);
  const wasm = adamStep(model, localBatchGradients(model, FEATURE_SHAPE));
  try {
    const onnxMs = await msPerImage(() => onnx.step(batch), { runs: RUNS });
    console.log(`onnxruntime-node tail step, ${threads} threads: ${onnxMs.toFixed(2)} ms/image`);
    const wasmMs = await msPerImage(() => wasm.step(batch), { runs: RUNS });
    console.log(`tfjs-wasm tail step, 1 thread: ${wasmMs.toFixed(2)} ms/image`);
    return { onnxMs, wasmMs };
  } finally {
    onnx.dispose();
    wasm.dispose();
    await tail.dispose();
  }
}, { runs: RUNS * 2 });
const torchMs = torch?.tail_step_ms ?? null;
if (torchMs !== null) console.log(`PyTorch 2 threads, channels_last tail step: ${torchMs.toFixed(2)} ms/image`);
console.log(JSON.stringify({ bench: 'engine-train', tail_step_ms: round(ours.onnxMs), tail_step_wasm_ms: round(ours.wasmMs), torch_tail_step_ms: torchMs === null ? null : round(torchMs), ratio: ratio(ours.onnxMs, torchMs), threads }));
