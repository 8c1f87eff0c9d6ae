/**
 * Binary-image building blocks for classical segmentation, on masks of one byte per pixel (1 = foreground):
 * Otsu's threshold, 4-connected components, hole filling, and dilation/erosion/closing with a square
 * structuring element (separable running max/min, linear in the image size whatever the radius).
 */

/** Otsu's threshold of 8-bit values: foreground is `value > threshold` (maximises between-class variance). */
export function otsuThreshold(values: Uint8Array): number {
  const histogram = new Float64Array(256);
  for (let i = 0; i < values.length; i++) histogram[values[i]!]!++;
  const total = values.length;
  let sumAll = 0;
  for (let v = 0; v < 256; v++) sumAll += v * histogram[v]!;
  let weightBelow = 0;
  let sumBelow = 0;
  let best = 0;
  let bestVariance = -1;
  for (let t = 0; t < 256; t++) {
    weightBelow += histogram[t]!;
    if (weightBelow === 0) continue;
    const weightAbove = total - weightBelow;
    if (weightAbove === 0) break;
    sumBelow += t * histogram[t]!;
    const meanBelow = sumBelow / weightBelow;
    const meanAbove = (sumAll - sumBelow) / weightAbove;
    const variance = weightBelow * weightAbove * (meanBelow - meanAbove) ** 2;
    if (variance > bestVariance) {
      bestVariance = variance;
      best = t;
    }
  }
  return best;
}

export interface Component {
  /** Label in the label image (1-based). */
  label: number;
  area: number;
  /** Inclusive bounding box. */
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
  touchesBorder: boolean;
}

/** 4-connected components of a mask: a label image (0 = background) and one record per component. */
export function connectedComponents(mask: Uint8Array, width: number, height: number): { labels: Int32Array; components: Component[] } {
  const labels = new Int32Array(width * height);
  const components: Component[] = [];
  const stack = new Int32Array(width * height);
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || labels[start]) continue;
    const label = components.length + 1;
    const c: Component = { label, area: 0, minX: width, minY: height, maxX: -1, maxY: -1, touchesBorder: false };
    let top = 0;
    stack[top++] = start;
    labels[start] = label;
    while (top > 0) {
      const i = stack[--top]!;
      const x = i % width;
      const y = (i - x) / width;
      c.area++;
      if (x < c.minX) c.minX = x;
      if (x > c.maxX) c.maxX = x;
      if (y < c.minY) c.minY = y;
      if (y > c.maxY) c.maxY = y;
      if (x === 0 || y === 0 || x === width - 1 || y === height - 1) c.touchesBorder = true;
      if (x > 0 && mask[i - 1] && !labels[i - 1]) {
        labels[i - 1] = label;
        stack[top++] = i - 1;
      }
      if (x < width - 1 && mask[i + 1] && !labels[i + 1]) {
        labels[i + 1] = label;
        stack[top++] = i + 1;
      }
      if (y > 0 && mask[i - width] && !labels[i - width]) {
        labels[i - width] = label;
        stack[top++] = i - width;
      }
      if (y < height - 1 && mask[i + width] && !labels[i + width]) {
        labels[i + width] = label;
        stack[top++] = i + width;
      }
    }
    components.push(c);
  }
  return { labels, components };
}

/** Keeps only the components whose label is in `keep`. */
export function selectComponents(labels: Int32Array, keep: ReadonlySet<number>): Uint8Array {
  const out = new Uint8Array(labels.length);
  for (let i = 0; i < labels.length; i++) if (keep.has(labels[i]!)) out[i] = 1;
  return out;
}

/** Fills holes: background not 4-connected to the image border becomes foreground. */
export function fillHoles(mask: Uint8Array, width: number, height: number): Uint8Array {
  const outside = new Uint8Array(mask.length);
  const stack = new Int32Array(mask.length);
  let top = 0;
  const push = (i: number) => {
    if (!mask[i] && !outside[i]) {
      outside[i] = 1;
      stack[top++] = i;
    }
  };
  for (let x = 0; x < width; x++) {
    push(x);
    push((height - 1) * width + x);
  }
  for (let y = 0; y < height; y++) {
    push(y * width);
    push(y * width + width - 1);
  }
  while (top > 0) {
    const i = stack[--top]!;
    const x = i % width;
    if (x > 0) push(i - 1);
    if (x < width - 1) push(i + 1);
    if (i >= width) push(i - width);
    if (i < mask.length - width) push(i + width);
  }
  const out = new Uint8Array(mask.length);
  for (let i = 0; i < mask.length; i++) out[i] = outside[i] ? 0 : 1;
  return out;
}

/** Running max (dilate) or min (erode) over a window of 2r+1 along rows then columns; pixels outside are ignored. */
function squareFilter(mask: Uint8Array, width: number, height: number, radius: number, dilate: boolean): Uint8Array {
  if (radius <= 0) return mask.slice();
  const pass = (input: Uint8Array, along: 'x' | 'y'): Uint8Array => {
    const out = new Uint8Array(input.length);
    const lines = along === 'x' ? height : width;
    const length = along === 'x' ? width : height;
    const stride = along === 'x' ? 1 : width;
    // Prefix counts of foreground along the line make each window's max/min O(1).
    const prefix = new Int32Array(length + 1);
    for (let line = 0; line < lines; line++) {
      const base = along === 'x' ? line * width : line;
      for (let k = 0; k < length; k++) prefix[k + 1] = prefix[k]! + input[base + k * stride]!;
      for (let k = 0; k < length; k++) {
        const lo = Math.max(0, k - radius);
        const hi = Math.min(length - 1, k + radius);
        const count = prefix[hi + 1]! - prefix[lo]!;
        out[base + k * stride] = dilate ? (count > 0 ? 1 : 0) : count === hi - lo + 1 ? 1 : 0;
      }
    }
    return out;
  };
  return pass(pass(mask, 'x'), 'y');
}

export function dilate(mask: Uint8Array, width: number, height: number, radius: number): Uint8Array {
  return squareFilter(mask, width, height, radius, true);
}

export function erode(mask: Uint8Array, width: number, height: number, radius: number): Uint8Array {
  return squareFilter(mask, width, height, radius, false);
}

/** Morphological closing (dilation then erosion): bridges gaps and notches narrower than about 2r+1 pixels. */
export function close(mask: Uint8Array, width: number, height: number, radius: number): Uint8Array {
  return erode(dilate(mask, width, height, radius), width, height, radius);
}
