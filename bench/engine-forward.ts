// MobileNetV2 forward pass, ms/image at batch 32: the engine on ONNX Runtime, and (when Debian's PyTorch is
// installed) an equivalent torchvision-free MobileNetV2 in PyTorch, channels_last, 2 threads, as reference.
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { loadBackbone } from '../src/engine/backbone.ts';

const BATCH = 32;
const WARMUP = 2;
const RUNS = 7;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function ortForwardMs(): Promise<number> {
  const backbone = await loadBackbone('mobilenet-v2', { batchSize: BATCH });
  const pixels = Float32Array.from({ length: BATCH * 224 * 224 * 3 }, (_, i) => (i * 7919) % 256);
  const times: number[] = [];
  try {
    for (let run = 0; run < WARMUP + RUNS; run++) {
      const start = performance.now();
      await backbone.forward(pixels, BATCH);
      if (run >= WARMUP) times.push((performance.now() - start) / BATCH);
    }
  } finally {
    await backbone.dispose();
  }
  return median(times);
}

const TORCH_SCRIPT = String.raw`
import time, torch, torch.nn as nn
torch.set_num_threads(2)
torch.manual_seed(0)
def cbr(cin, cout, k, s, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
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
net = nn.Sequential(*layers).eval().to(memory_format=torch.channels_last)
x = torch.rand(${BATCH}, 3, 224, 224).to(memory_format=torch.channels_last)
times = []
with torch.no_grad():
    for run in range(${WARMUP + RUNS}):
        start = time.perf_counter(); net(x)
        if run >= ${WARMUP}: times.append((time.perf_counter() - start) * 1000 / ${BATCH})
times.sort()
print(times[len(times) // 2])
`;

function torchForwardMs(): number | null {
  const probe = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    console.log('PyTorch reference skipped: /usr/bin/python3 cannot import torch (apt-get install -y python3-torch)');
    return null;
  }
  const run = spawnSync('/usr/bin/python3', ['-c', TORCH_SCRIPT], { encoding: 'utf8' });
  if (run.status !== 0) {
    console.log(`PyTorch reference failed: ${run.stderr.trim().split('\n').pop() ?? ''}`);
    return null;
  }
  return Number(run.stdout.trim().split('\n').pop());
}

const forwardMs = await ortForwardMs();
console.log(`MobileNetV2 224x224 forward, batch ${BATCH}, onnxruntime-node ${availableParallelism()} intra-op threads: ${forwardMs.toFixed(2)} ms/image`);
const torchMs = torchForwardMs();
if (torchMs !== null) console.log(`PyTorch ${BATCH}, 2 threads, channels_last: ${torchMs.toFixed(2)} ms/image`);
const round = (v: number): number => Math.round(v * 100) / 100;
console.log(
  JSON.stringify({
    bench: 'engine-forward',
    forward_ms: round(forwardMs),
    torch_forward_ms: torchMs === null ? null : round(torchMs),
    ratio: torchMs === null ? null : round(forwardMs / torchMs),
  }),
);
