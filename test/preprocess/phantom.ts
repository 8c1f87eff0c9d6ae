/** Synthetic chest CT phantoms: a bright body ellipse with two dark lung ellipses inside, plus noise. */
import { Rng } from '../../src/data/random.ts';

export interface Ellipse {
  cx: number;
  cy: number;
  rx: number;
  ry: number;
}

export const inside = (e: Ellipse, x: number, y: number) => ((x - e.cx) / e.rx) ** 2 + ((y - e.cy) / e.ry) ** 2 <= 1;

export function phantomGeometry(size: number): { body: Ellipse; lungs: [Ellipse, Ellipse] } {
  const s = size;
  return {
    body: { cx: s * 0.5, cy: s * 0.52, rx: s * 0.42, ry: s * 0.33 },
    lungs: [
      { cx: s * 0.33, cy: s * 0.5, rx: s * 0.13, ry: s * 0.22 },
      { cx: s * 0.67, cy: s * 0.5, rx: s * 0.13, ry: s * 0.22 },
    ],
  };
}

/** Values per region (outside, body, lung) with Gaussian noise of `sigma`; `withLungs: false` leaves the body solid. */
export function phantomValues(size: number, levels: { outside: number; body: number; lung: number }, sigma: number, seed: number, withLungs = true): { values: Float32Array; truth: Uint8Array } {
  const { body, lungs } = phantomGeometry(size);
  const rng = new Rng(seed);
  const values = new Float32Array(size * size);
  const truth = new Uint8Array(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const lung = withLungs && lungs.some((l) => inside(l, x, y));
      // A few bright "vessels" inside the lungs, which the hole filling must keep in the mask.
      const vessel = lung && (x * 7 + y * 13) % 97 === 0;
      const level = lung ? (vessel ? levels.body : levels.lung) : inside(body, x, y) ? levels.body : levels.outside;
      // Box-Muller normal noise from the seeded generator.
      const noise = Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
      values[y * size + x] = level + sigma * noise;
      truth[y * size + x] = lung ? 1 : 0;
    }
  }
  return { values, truth };
}

export function toRgb(values: Float32Array, size: number): { data: Uint8Array; width: number; height: number } {
  const data = new Uint8Array(size * size * 3);
  for (let i = 0; i < values.length; i++) data[i * 3] = data[i * 3 + 1] = data[i * 3 + 2] = Math.max(0, Math.min(255, Math.round(values[i]!)));
  return { data, width: size, height: size };
}

export function iou(a: Uint8Array, b: Uint8Array): number {
  let both = 0;
  let either = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] && b[i]) both++;
    if (a[i] || b[i]) either++;
  }
  return either === 0 ? 1 : both / either;
}
