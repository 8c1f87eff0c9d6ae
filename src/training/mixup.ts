/**
 * Mixup (Zhang et al., 2018) on cached trunk features: each training example becomes a convex combination of
 * itself and a partner from its batch, features and targets alike, λ ~ Beta(α, α) per example. The trunk is
 * frozen, so mixing its activations is mixup at the tail's input ("manifold mixup" at one fixed layer).
 */
import type { Rng } from '../data/random.ts';

/** Beta(a, a) by Jöhnk's method: exact for every a > 0 and quick for the small a mixup uses. */
export function sampleBeta(rng: Rng, a: number): number {
  if (!(a > 0)) throw new RangeError(`Beta parameter must be positive, got ${a}`);
  for (;;) {
    const x = rng.next() ** (1 / a);
    const y = rng.next() ** (1 / a);
    // Both underflow to 0 for tiny a: fall back to the distribution's limit, a fair coin between 0 and 1.
    if (x + y === 0) return rng.next() < 0.5 ? 0 : 1;
    if (x + y <= 1) return x / (x + y);
  }
}

/**
 * Mixed copies of a batch: `x` holds y.length examples of `per` values. λ is folded to max(λ, 1 - λ) so each
 * example keeps the larger share of itself (every example still appears, dominant, once).
 */
export function mixBatch(x: Float32Array, y: Float32Array, per: number, alpha: number, rng: Rng): { x: Float32Array; y: Float32Array } {
  const n = y.length;
  if (x.length !== n * per) throw new RangeError(`features hold ${x.length} values, expected ${n} x ${per}`);
  const partners = rng.shuffled(Array.from({ length: n }, (_, i) => i));
  const mixedX = new Float32Array(x.length);
  const mixedY = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const draw = sampleBeta(rng, alpha);
    const lambda = Math.max(draw, 1 - draw);
    const j = partners[i]!;
    for (let k = 0; k < per; k++) mixedX[i * per + k] = lambda * x[i * per + k]! + (1 - lambda) * x[j * per + k]!;
    mixedY[i] = lambda * y[i]! + (1 - lambda) * y[j]!;
  }
  return { x: mixedX, y: mixedY };
}
