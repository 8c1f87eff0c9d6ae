// Mixup's pieces against hand-worked cases: Beta(a, a) moments, convex mixing, determinism.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../src/data/random.ts';
import { mixBatch, sampleBeta } from '../../src/training/mixup.ts';

test('Beta(a, a) draws: in [0, 1], mean 1/2, variance 1 / (4 (2a + 1))', () => {
  for (const a of [0.2, 1, 4]) {
    const rng = new Rng(7);
    const draws = Array.from({ length: 20000 }, () => sampleBeta(rng, a));
    assert.ok(draws.every((d) => d >= 0 && d <= 1));
    const mean = draws.reduce((s, d) => s + d, 0) / draws.length;
    const variance = draws.reduce((s, d) => s + (d - mean) ** 2, 0) / draws.length;
    const expected = 1 / (4 * (2 * a + 1));
    assert.ok(Math.abs(mean - 0.5) < 0.01, `a=${a}: mean ${mean}`);
    assert.ok(Math.abs(variance - expected) / expected < 0.05, `a=${a}: variance ${variance} vs ${expected}`);
  }
  assert.throws(() => sampleBeta(new Rng(1), 0), /positive/);
});

test('mixBatch: each example is itself (weight >= 1/2) plus a batch partner, targets mixed alike; seeded', () => {
  // Example i holds the one-hot feature vector e_i and target i / 3, so its mix reveals λ and the partner.
  const n = 4;
  const x = new Float32Array(n * n);
  for (let i = 0; i < n; i++) x[i * n + i] = 1;
  const y = Float32Array.from([0, 1 / 3, 2 / 3, 1]);
  const mixed = mixBatch(x, y, n, 0.4, new Rng(3));
  const partners = new Set<number>();
  for (let i = 0; i < n; i++) {
    const row = Array.from(mixed.x.subarray(i * n, (i + 1) * n));
    assert.ok(Math.abs(row.reduce((s, v) => s + v, 0) - 1) < 1e-6, 'weights sum to 1');
    const self = row[i]!;
    assert.ok(self >= 0.5 - 1e-6, `example ${i} keeps ${self} of itself`);
    const partner = row.findIndex((v, k) => k !== i && v > 0);
    const expectedY = partner < 0 ? y[i]! : self * y[i]! + row[partner]! * y[partner]!;
    assert.ok(Math.abs(mixed.y[i]! - expectedY) < 1e-6);
    partners.add(partner < 0 ? i : partner);
  }
  assert.equal(partners.size, n, 'the partners are a permutation of the batch');
  assert.deepEqual(mixBatch(x, y, n, 0.4, new Rng(3)), mixed);
  assert.throws(() => mixBatch(x, y, 3, 0.4, new Rng(3)), /expected 4 x 3/);
});
