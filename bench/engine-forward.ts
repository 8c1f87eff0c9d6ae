// MobileNetV2 forward pass, ms/image at batch 32, on ONNX Runtime against Debian's PyTorch (channels_last,
// 2 threads) in the same run. `npm run bench -- engine` measures this and the rest of issue 8's table.
import { availableParallelism } from 'node:os';
import { loadBackbone } from '../src/engine/backbone.ts';
import { BATCH, bracketedByTorch, msPerImage, ratio, round, syntheticImages } from './lib/engine.ts';

const { ours: forwardMs, torch } = await bracketedByTorch(['forward'], async () => {
  const backbone = await loadBackbone('mobilenet-v2', { batchSize: BATCH });
  const images = syntheticImages();
  try {
    return await msPerImage(() => backbone.forward(images, BATCH));
  } finally {
    await backbone.dispose();
  }
});
const torchMs = torch?.forward_ms ?? null;
console.log(`MobileNetV2 224x224 forward, batch ${BATCH}, onnxruntime-node ${availableParallelism()} intra-op threads: ${forwardMs.toFixed(2)} ms/image`);
if (torchMs !== null) console.log(`PyTorch, 2 threads, channels_last: ${torchMs.toFixed(2)} ms/image`);
console.log(JSON.stringify({ bench: 'engine-forward', forward_ms: round(forwardMs), torch_forward_ms: torchMs === null ? null : round(torchMs), ratio: ratio(forwardMs, torchMs) }));
