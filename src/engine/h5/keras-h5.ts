/**
 * Keras HDF5 weight files (the legacy `model.save_weights('x.h5')` layout that keras.applications downloads)
 * read and written with h5wasm, and assigned to a tfjs-layers model by layer name and weight name.
 *
 * Layout: the root (or its `model_weights` group, in a whole-model .h5) has attribute `layer_names`; each layer
 * is a group with attribute `weight_names` (e.g. `stem_conv/kernel:0`), and each weight is the dataset at that
 * path inside the layer's group.
 */
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import h5wasm from 'h5wasm/node';

export class KerasH5Error extends Error {
  override name = 'KerasH5Error';
}

export interface KerasH5Weight {
  /** The name as stored, e.g. `block1a_dwconv/depthwise_kernel:0`. */
  name: string;
  /** The weight's own name inside its layer, e.g. `depthwise_kernel`. */
  shortName: string;
  shape: number[];
  values: Float32Array;
}

export interface KerasH5Layer {
  name: string;
  weights: KerasH5Weight[];
}

export interface KerasH5Weights {
  /** Every layer in the file's order, those without weights included. */
  layers: KerasH5Layer[];
  kerasVersion: string | undefined;
  backend: string | undefined;
}

/** `block1a_dwconv/depthwise_kernel:0` -> `depthwise_kernel`: the last path part without the `:N` suffix. */
export function shortWeightName(name: string): string {
  const last = name.split('/').pop() ?? name;
  return last.replace(/:\d+$/, '');
}

let ready: Promise<unknown> | undefined;
async function h5(): Promise<typeof h5wasm> {
  ready ??= h5wasm.ready;
  await ready;
  return h5wasm;
}

function stringList(value: unknown): string[] {
  if (value === null || value === undefined) return [];
  if (typeof value === 'string') return [value];
  // Keras writes an empty numeric array when a layer has no weights.
  if (ArrayBuffer.isView(value) && (value as unknown as ArrayLike<unknown>).length === 0) return [];
  if (Array.isArray(value)) return value.map((v) => (v instanceof Uint8Array ? new TextDecoder().decode(v) : String(v)));
  throw new KerasH5Error(`expected a list of strings, got ${typeof value}`);
}

function stringAttribute(group: InstanceType<typeof h5wasm.Group>, name: string): string | undefined {
  const attribute = group.attrs[name];
  if (!attribute) return undefined;
  const value = attribute.value;
  return typeof value === 'string' ? value : undefined;
}

function toFloat32(values: unknown, where: string): Float32Array {
  if (values instanceof Float32Array) return values;
  if (values instanceof Float64Array || values instanceof Int32Array || values instanceof Uint8Array || values instanceof Int16Array || values instanceof Int8Array || values instanceof Uint16Array || values instanceof Uint32Array) {
    return Float32Array.from(values);
  }
  if (values instanceof BigInt64Array || values instanceof BigUint64Array) return Float32Array.from(values, (v) => Number(v));
  if (typeof values === 'number') return Float32Array.of(values);
  if (typeof values === 'bigint') return Float32Array.of(Number(values));
  throw new KerasH5Error(`${where}: not a numeric dataset`);
}

const HDF5_SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

/** HDF5's superblock signature sits at 0, 512, 1024, 2048, ... (after an optional user block). */
function looksLikeHdf5(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const probe = Buffer.alloc(8);
    for (let offset = 0; offset <= 8192; offset = offset === 0 ? 512 : offset * 2) {
      if (readSync(fd, probe, 0, 8, offset) < 8) return false;
      if (probe.equals(HDF5_SIGNATURE)) return true;
    }
    return false;
  } finally {
    closeSync(fd);
  }
}

/** Reads every layer's weights from a Keras HDF5 weight (or whole-model) file. */
export async function readKerasH5Weights(path: string): Promise<KerasH5Weights> {
  if (typeof path !== 'string' || path === '') throw new KerasH5Error('weights: a .h5 file path is required');
  if (!existsSync(path)) throw new KerasH5Error(`weights: ${path} does not exist`);
  // h5wasm opens a non-HDF5 file without complaint and fails later with an unhelpful message.
  if (!looksLikeHdf5(path)) throw new KerasH5Error(`weights: ${path} is not a readable HDF5 file (no HDF5 signature)`);
  const lib = await h5();
  let file: InstanceType<typeof h5wasm.File>;
  try {
    file = new lib.File(path, 'r');
  } catch (error) {
    throw new KerasH5Error(`weights: ${path} is not a readable HDF5 file (${(error as Error).message})`);
  }
  try {
    const modelWeights = file.get('model_weights');
    const root = modelWeights instanceof lib.Group ? modelWeights : file;
    if (!root.attrs['layer_names']) {
      throw new KerasH5Error(`weights: ${path} is not a Keras weight file (no 'layer_names' attribute at ${root.path})`);
    }
    const layerNames = stringList(root.attrs['layer_names'].value);
    const layers = layerNames.map((layerName): KerasH5Layer => {
      const group = root.get(layerName);
      if (!(group instanceof lib.Group)) throw new KerasH5Error(`weights: ${path}: layer '${layerName}' is listed but has no group`);
      const weightNames = stringList(group.attrs['weight_names']?.value);
      const weights = weightNames.map((name): KerasH5Weight => {
        const dataset = group.get(name);
        if (!(dataset instanceof lib.Dataset)) throw new KerasH5Error(`weights: ${path}: layer '${layerName}' lists weight '${name}' but has no such dataset`);
        return { name, shortName: shortWeightName(name), shape: dataset.shape ?? [], values: toFloat32(dataset.value, `${layerName}/${name}`) };
      });
      return { name: layerName, weights };
    });
    return { layers, kerasVersion: stringAttribute(root, 'keras_version'), backend: stringAttribute(root, 'backend') };
  } finally {
    file.close();
  }
}

export interface LoadKerasWeightsOptions {
  /** Ignore layers with weights in the file that the model lacks (e.g. the classifier of a with-top file); default false. */
  allowUnusedLayers?: boolean;
}

export interface LoadKerasWeightsResult {
  /** Layers whose weights were set. */
  layers: number;
  /** Values assigned. */
  values: number;
  kerasVersion: string | undefined;
  /** File layers with weights the model has no layer for (only when allowUnusedLayers). */
  unused: string[];
}

/** A tfjs weight's own name: `stem_bn/moving_mean` -> `moving_mean` (originalName is free of tfjs's uniquifying suffixes). */
function tfjsShortName(variable: tfl.LayerVariable): string {
  return shortWeightName(variable.originalName ?? variable.name);
}

const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((v, i) => v === b[i]);
const showShape = (s: readonly number[]): string => `[${s.join(', ')}]`;

/**
 * Sets the model's weights from a Keras HDF5 file (a path, or what readKerasH5Weights returned), matched by layer name and, inside a layer, by weight name.
 * Nothing is assigned unless everything matches: every mismatch (missing or extra layer or weight, wrong shape)
 * is listed in one error.
 */
export async function loadKerasH5Weights(model: tfl.LayersModel, source: string | KerasH5Weights, options: LoadKerasWeightsOptions = {}): Promise<LoadKerasWeightsResult> {
  for (const key of Object.keys(options)) {
    if (key !== 'allowUnusedLayers') throw new KerasH5Error(`loadKerasH5Weights: unknown option '${key}'; valid options: allowUnusedLayers`);
  }
  if (options.allowUnusedLayers !== undefined && typeof options.allowUnusedLayers !== 'boolean') {
    throw new KerasH5Error(`allowUnusedLayers must be true or false, got ${JSON.stringify(options.allowUnusedLayers)}`);
  }
  const file = typeof source === 'string' ? await readKerasH5Weights(source) : source;
  const path = typeof source === 'string' ? source : 'the weight file';
  const fileLayers = new Map(file.layers.filter((l) => l.weights.length > 0).map((l) => [l.name, l]));
  const problems: string[] = [];
  const assignments: Array<{ layer: tfl.layers.Layer; values: Array<{ values: Float32Array; shape: number[] }> }> = [];
  const modelLayers = new Set<string>();
  for (const layer of model.layers) {
    if (layer.weights.length === 0) continue;
    modelLayers.add(layer.name);
    const stored = fileLayers.get(layer.name);
    if (!stored) {
      problems.push(`layer '${layer.name}' (${layer.getClassName()}, ${layer.weights.length} weights) is not in the file`);
      continue;
    }
    const byName = new Map(stored.weights.map((w) => [w.shortName, w]));
    const values: Array<{ values: Float32Array; shape: number[] }> = [];
    for (const variable of layer.weights) {
      const short = tfjsShortName(variable);
      const weight = byName.get(short);
      byName.delete(short);
      if (!weight) {
        problems.push(`layer '${layer.name}': weight '${short}' ${showShape(variable.shape as number[])} is not in the file (it has ${stored.weights.map((w) => w.shortName).join(', ')})`);
        continue;
      }
      if (!sameShape(weight.shape, variable.shape as number[])) {
        problems.push(`layer '${layer.name}': weight '${short}' has shape ${showShape(weight.shape)} in the file, ${showShape(variable.shape as number[])} in the model`);
        continue;
      }
      values.push({ values: weight.values, shape: variable.shape as number[] });
    }
    for (const extra of byName.values()) problems.push(`layer '${layer.name}': the file has weight '${extra.shortName}' ${showShape(extra.shape)}, which the model's layer lacks`);
    assignments.push({ layer, values });
  }
  const unused = [...fileLayers.keys()].filter((name) => !modelLayers.has(name));
  if (!options.allowUnusedLayers) {
    for (const name of unused) problems.push(`the file has layer '${name}' (${fileLayers.get(name)!.weights.length} weights), which the model lacks`);
  }
  if (problems.length > 0) {
    const shown = problems.slice(0, 25);
    const more = problems.length > shown.length ? `\n  ... and ${problems.length - shown.length} more` : '';
    throw new KerasH5Error(`weights: ${path} does not match model '${model.name}' (${problems.length} differences):\n  ${shown.join('\n  ')}${more}`);
  }
  let count = 0;
  for (const { layer, values } of assignments) {
    const tensors = values.map((v) => tf.tensor(v.values, v.shape, 'float32'));
    try {
      layer.setWeights(tensors);
    } finally {
      tf.dispose(tensors);
    }
    count += values.reduce((sum, v) => sum + v.values.length, 0);
  }
  return { layers: assignments.length, values: count, kerasVersion: file.kerasVersion, unused: options.allowUnusedLayers ? unused : [] };
}

export interface SaveKerasWeightsOptions {
  /** Written as the root's `keras_version` attribute; default '2.9.0'. */
  kerasVersion?: string;
}

/**
 * Writes the model's weights in Keras's HDF5 layout (float32; every layer gets a group, in model order), so
 * `keras_model.load_weights(path)` and loadKerasH5Weights read them.
 */
export async function saveKerasH5Weights(model: tfl.LayersModel, path: string, options: SaveKerasWeightsOptions = {}): Promise<void> {
  if (typeof path !== 'string' || path === '') throw new KerasH5Error('saveKerasH5Weights: a .h5 file path is required');
  const lib = await h5();
  const file = new lib.File(path, 'w');
  try {
    file.create_attribute('layer_names', model.layers.map((l) => l.name));
    file.create_attribute('backend', 'tensorflow');
    file.create_attribute('keras_version', options.kerasVersion ?? '2.9.0');
    for (const layer of model.layers) {
      const group = file.create_group(layer.name);
      const names = layer.weights.map((w) => `${layer.name}/${tfjsShortName(w)}:0`);
      // An empty list of strings cannot be guessed by h5wasm; Keras writes an empty array, readers treat both alike.
      if (names.length > 0) group.create_attribute('weight_names', names);
      else group.create_attribute('weight_names', new Float32Array(0), [0], '<f');
      for (const [i, variable] of layer.weights.entries()) {
        // h5wasm does not create intermediate groups: `stem_conv/kernel:0` needs the group `stem_conv` first.
        const parts = names[i]!.split('/');
        let parent = group;
        for (const part of parts.slice(0, -1)) {
          const existing = parent.get(part);
          parent = existing instanceof lib.Group ? existing : parent.create_group(part);
        }
        const values = variable.read().dataSync();
        parent.create_dataset({ name: parts[parts.length - 1]!, data: Float32Array.from(values), shape: variable.shape as number[], dtype: '<f' });
      }
    }
  } finally {
    file.close();
  }
}
