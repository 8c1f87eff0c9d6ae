/**
 * Grad-CAM (Selvaraju et al. 2017) on the trained tail: where in the last convolutional block the evidence for
 * COVID lies. With A the activation of that block (h x w x C) and y the logit,
 *   w_c = mean over (i, j) of dy/dA_ijc,   cam = relu(sum_c w_c A_c),
 * scaled to [0, 1] by its maximum, upsampled to the image and drawn over it as a heatmap.
 * The gradient is taken w.r.t. the activation itself: the tail is run layer by layer, the target layer's output
 * is kept, and the layers after it are re-run from that tensor under tf.grad.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import sharp from 'sharp';
import type { DecodedImage } from '../data/decode.ts';

const CONV_CLASSES = new Set(['Conv2D', 'DepthwiseConv2D', 'SeparableConv2D']);

export class GradCamError extends Error {
  override name = 'GradCamError';
}

export interface GradCam {
  /** Row-major h x w map in [0, 1] (all zeros when no location has positive evidence). */
  map: Float32Array;
  width: number;
  height: number;
  /** The logit of the image (P(COVID) = sigmoid(logit)). */
  logit: number;
  /** Maximum of relu(sum_c w_c A_c) before scaling: 0 means the map carries no positive evidence. */
  peak: number;
  layer: string;
}

type Layer = tfl.LayersModel['layers'][number];

function runnableLayers(model: tfl.LayersModel): Layer[] {
  for (const layer of model.layers) {
    if (layer.getClassName() === 'Functional' || layer.getClassName() === 'Sequential' || 'layers' in layer) {
      throw new GradCamError(`layer '${layer.name}' is a nested model: Grad-CAM needs a flat tail`);
    }
  }
  return model.layers.filter((layer) => layer.getClassName() !== 'InputLayer');
}

/** The last convolutional layer of the model: the default Grad-CAM target (conv_1x1 for MobileNetV2). */
export function lastConvLayer(model: tfl.LayersModel): string {
  const convs = runnableLayers(model).filter((layer) => CONV_CLASSES.has(layer.getClassName()));
  const last = convs[convs.length - 1];
  if (!last) throw new GradCamError('the model has no convolutional layer to explain');
  return last.name;
}

/**
 * Applies `layers` (in topological order) to the values already known by symbolic tensor id, in inference
 * mode, adding each output to `values`. Layers whose inputs are unknown are skipped.
 */
function propagate(layers: Layer[], values: Map<number, tf.Tensor>): void {
  for (const layer of layers) {
    for (const node of layer.inboundNodes) {
      const inputs = node.inputTensors.map((symbolic) => values.get(symbolic.id));
      if (inputs.length === 0 || inputs.some((t) => t === undefined)) continue;
      const concrete = inputs as tf.Tensor[];
      const output = layer.apply(concrete.length === 1 ? concrete[0]! : concrete, { training: false }) as tf.Tensor | tf.Tensor[];
      const outputs = Array.isArray(output) ? output : [output];
      node.outputTensors.forEach((symbolic, i) => values.set(symbolic.id, outputs[i]!));
    }
  }
}

/**
 * Grad-CAM of one image from its tail input (the trunk activation, `shape` without batch).
 * `layer` defaults to the last convolutional layer.
 */
export function gradCam(tail: tfl.LayersModel, input: Float32Array, shape: readonly number[], layer?: string): GradCam {
  if (tail.inputs.length !== 1 || tail.outputs.length !== 1) throw new GradCamError('Grad-CAM needs a tail with one input and one output');
  const per = shape.reduce((a, b) => a * b, 1);
  if (input.length !== per) throw new GradCamError(`input has ${input.length} values, shape [${shape.join(', ')}] needs ${per}`);
  const target = layer ?? lastConvLayer(tail);
  const layers = runnableLayers(tail);
  const at = layers.findIndex((l) => l.name === target);
  if (at < 0) throw new GradCamError(`layer '${target}' is not in the tail; layers: ${layers.map((l) => l.name).join(', ')}`);
  const targetLayer = layers[at]!;
  if (targetLayer.inboundNodes.length !== 1) throw new GradCamError(`layer '${target}' is used ${targetLayer.inboundNodes.length} times; Grad-CAM needs one`);
  const targetId = targetLayer.inboundNodes[0]!.outputTensors[0]!.id;
  const outputId = tail.outputs[0]!.id;
  const before = layers.slice(0, at + 1);
  const after = layers.slice(at + 1);

  const result = tf.tidy(() => {
    const values = new Map<number, tf.Tensor>([[tail.inputs[0]!.id, tf.tensor(input, [1, ...shape])]]);
    propagate(before, values);
    const activation = values.get(targetId);
    if (!activation || activation.rank !== 4) throw new GradCamError(`layer '${target}' must output a [1, h, w, c] activation, got [${activation?.shape.join(', ')}]`);
    // Everything computed before the target stays as it is: only the path through the activation is differentiated.
    const logitOf = (a: tf.Tensor): tf.Scalar => {
      const downstream = new Map(values);
      downstream.set(targetId, a);
      propagate(after, downstream);
      const logit = downstream.get(outputId);
      if (!logit) throw new GradCamError(`the tail output does not depend on layer '${target}'`);
      return tf.sum(logit);
    };
    const { value, grad } = tf.valueAndGrad(logitOf)(activation);
    const weights = tf.mean(grad, [1, 2], true);
    const cam = tf.squeeze(tf.relu(tf.sum(tf.mul(activation, weights), 3)), [0]);
    return { cam, logit: value };
  });
  const [height, width] = result.cam.shape as [number, number];
  const raw = result.cam.dataSync() as Float32Array;
  const logit = result.logit.dataSync()[0]!;
  tf.dispose([result.cam, result.logit]);
  let peak = 0;
  for (const v of raw) peak = Math.max(peak, v);
  const map = new Float32Array(raw.length);
  if (peak > 0) for (let i = 0; i < raw.length; i++) map[i] = raw[i]! / peak;
  return { map, width, height, logit, peak, layer: target };
}

/** Bilinear upsampling of a small map to width x height, sampling at pixel centres (half-pixel alignment). */
export function upsample(map: Float32Array, mapWidth: number, mapHeight: number, width: number, height: number): Float32Array {
  const out = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const sy = Math.min(Math.max(((y + 0.5) * mapHeight) / height - 0.5, 0), mapHeight - 1);
    const y0 = Math.floor(sy);
    const y1 = Math.min(y0 + 1, mapHeight - 1);
    const fy = sy - y0;
    for (let x = 0; x < width; x++) {
      const sx = Math.min(Math.max(((x + 0.5) * mapWidth) / width - 0.5, 0), mapWidth - 1);
      const x0 = Math.floor(sx);
      const x1 = Math.min(x0 + 1, mapWidth - 1);
      const fx = sx - x0;
      const top = map[y0 * mapWidth + x0]! * (1 - fx) + map[y0 * mapWidth + x1]! * fx;
      const bottom = map[y1 * mapWidth + x0]! * (1 - fx) + map[y1 * mapWidth + x1]! * fx;
      out[y * width + x] = top * (1 - fy) + bottom * fy;
    }
  }
  return out;
}

/** The "jet" colour map: blue (0) -> cyan -> yellow -> red (1). */
export function jet(value: number): [number, number, number] {
  const v = Math.min(Math.max(value, 0), 1);
  const channel = (offset: number) => Math.round(255 * Math.min(Math.max(1.5 - Math.abs(4 * v - offset), 0), 1));
  return [channel(3), channel(2), channel(1)];
}

/**
 * The image with the map drawn over it as a PNG: colour weighted by the map, so regions without evidence stay
 * the plain CT grey and the hottest region is `opacity` colour.
 */
export async function heatmapOverlay(image: DecodedImage, cam: Pick<GradCam, 'map' | 'width' | 'height'>, opacity = 0.5): Promise<Buffer> {
  const { width, height, data } = image;
  const up = upsample(cam.map, cam.width, cam.height, width, height);
  const out = Buffer.alloc(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    const value = up[i]!;
    const alpha = opacity * value;
    const colour = jet(value);
    for (let c = 0; c < 3; c++) out[3 * i + c] = Math.round((1 - alpha) * data[3 * i + c]! + alpha * colour[c]!);
  }
  return sharp(out, { raw: { width, height, channels: 3 } }).png().toBuffer();
}
