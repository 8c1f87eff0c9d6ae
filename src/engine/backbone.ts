/**
 * The engine's public API for frozen forward passes: a backbone (or its trunk up to a cut) exported to ONNX
 * and run on onnxruntime-node, and the same graph (or its tail) as a tfjs-layers model for training.
 */
import { availableParallelism } from 'node:os';
import { existsSync, readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import * as ort from 'onnxruntime-node';
import { ENGINE_CACHE_VERSION, EngineCache, serializeGraph, deserializeGraph, sha256File, slug } from './cache.ts';
import type { Graph } from './ir.ts';
import { cutTensor, featureGraph, inferShapes, prune, tailGraph, trunkGraph, withInputSize } from './ir.ts';
import { exportOnnx, ONNX_INPUT, ONNX_OUTPUT } from './onnx/export.ts';
import { BackboneError, EFFICIENTNET_B0_ENV, resolveBackbone, resolveCut, type BackboneSpec } from './registry.ts';
import { loadKerasH5Weights, readKerasH5Weights } from './h5/keras-h5.ts';
import { importTflite } from './tflite/import.ts';
import { buildTfjsLayersModel } from './tfjs.ts';
import { WasmForwardPool } from './wasm/pool.ts';
import { importTfjsLayersModel } from './tfjs-import.ts';
import { loadTfjsLayersModel } from './tfjs-io.ts';

/** Which end of the network: the feature vector (classifier top removed) or the ImageNet class scores. */
export type BackboneHead = 'features' | 'classifier';
const HEADS: readonly BackboneHead[] = ['features', 'classifier'];

export interface GraphOptions {
  /** Feature layer of a tfjs layers model directory, or to override a built-in's. */
  featureLayer?: string;
  /** 'features' (default) or 'classifier' (built-ins with an ImageNet top only). */
  head?: BackboneHead;
  /** Cache folder for converted models; default .cache/engine under the project root. */
  cacheDir?: string;
  /** Keras .h5 weight file for a Keras-format backbone (efficientnet-b0). */
  weights?: string;
  /** Square input side in pixels when not the backbone's own (the convolutions are size-agnostic). */
  inputSize?: number;
}

/** 'onnx': onnxruntime-node (default, fast); 'wasm': tfjs-wasm in worker_threads, no native library. */
export type ForwardEngine = 'onnx' | 'wasm';
const ENGINES: readonly ForwardEngine[] = ['onnx', 'wasm'];

export interface LoadBackboneOptions extends GraphOptions {
  engine?: ForwardEngine;
  /** Worker threads for the wasm engine; default os.availableParallelism(). */
  workers?: number;
  /** Run only the frozen trunk: everything before this layer or block prefix (e.g. 'block_16'). */
  cut?: string;
  /** Images per ONNX Runtime call (bounds memory); default 32. */
  batchSize?: number;
  /** ONNX Runtime intra-op threads; default os.availableParallelism(). */
  threads?: number;
}

export interface Backbone {
  readonly name: string;
  readonly spec: BackboneSpec;
  /** Square input side in pixels. */
  readonly inputSize: number;
  /** Per-image input shape [H, W, C] (NHWC; raw RGB 0-255 for a full built-in backbone). */
  readonly inputShape: readonly number[];
  /** Per-image output shape (without batch): [features] or the cut activation [H, W, C] in NHWC order. */
  readonly outputShape: readonly number[];
  /** Values per image in the result of forward. */
  readonly outputSize: number;
  /** The cut point when this runs a trunk, and the name of the activation it returns. */
  readonly cut: string | undefined;
  readonly outputLayer: string;
  /** Runs n images (NHWC float32, or a tensor [n, H, W, C]); returns n * outputSize values in input order. */
  forward(batch: Float32Array | Uint8Array | tf.Tensor, n?: number): Promise<Float32Array>;
  dispose(): Promise<void>;
}

function check(condition: boolean, option: string, expected: string, value: unknown): void {
  if (!condition) throw new BackboneError(`${option} must be ${expected}, got ${JSON.stringify(value)}`);
}

function validateGraphOptions(options: GraphOptions): void {
  if (options.head !== undefined) check(HEADS.includes(options.head), 'head', `one of ${HEADS.join(', ')}`, options.head);
  if (options.cacheDir !== undefined) check(typeof options.cacheDir === 'string' && options.cacheDir !== '', 'cacheDir', 'a folder path', options.cacheDir);
  if (options.weights !== undefined) check(typeof options.weights === 'string' && options.weights !== '', 'weights', 'a .h5 file path', options.weights);
  if (options.inputSize !== undefined) check(Number.isInteger(options.inputSize) && options.inputSize >= 32 && options.inputSize <= 1024, 'inputSize', 'an integer in [32, 1024]', options.inputSize);
}

/**
 * A Keras-format backbone: its architecture built in tfjs-layers and the .h5 weights assigned by layer name.
 * A file with the ImageNet classifier ('predictions') gives the model with its top, else pooling 'avg'.
 */
export async function buildKerasBackbone(spec: BackboneSpec): Promise<tfl.LayersModel> {
  if (!spec.build) throw new BackboneError(`backbone '${spec.name}' is not a Keras-format backbone`);
  if (!existsSync(spec.source)) {
    throw new BackboneError(
      `backbone '${spec.name}': weight file ${spec.source} not found. Give one with --weights path/to/file.h5 or ${EFFICIENTNET_B0_ENV} ` +
        '(README, EfficientNet-B0: where the file comes from and how to check it)',
    );
  }
  const weights = await readKerasH5Weights(spec.source);
  const includeTop = weights.layers.some((layer) => layer.name === 'predictions' && layer.weights.length > 0);
  const model = spec.build({ includeTop });
  try {
    await loadKerasH5Weights(model, weights);
  } catch (error) {
    model.dispose();
    throw error;
  }
  return model;
}

/** The whole source graph of a backbone (IR), from the cache when the source file's hash matches. */
export async function sourceGraph(spec: BackboneSpec, cache: EngineCache): Promise<{ graph: Graph; hash: string }> {
  if (spec.format === 'keras-h5') {
    const model = await buildKerasBackbone(spec);
    try {
      return { graph: importTfjsLayersModel(model), hash: sha256File(spec.source) };
    } finally {
      model.dispose();
    }
  }
  const hash = sha256File(spec.source);
  if (spec.format === 'tflite') {
    const bytes = cache.getOrCreate(`${spec.name}-${hash.slice(0, 16)}-v${ENGINE_CACHE_VERSION}.ir`, () => serializeGraph(importTflite(readFileSync(spec.source), { source: spec.source })));
    return { graph: deserializeGraph(bytes), hash };
  }
  const model = await loadTfjsLayersModel(spec.source);
  try {
    return { graph: importTfjsLayersModel(model), hash };
  } finally {
    model.dispose();
  }
}

interface ResolvedGraph {
  spec: BackboneSpec;
  graph: Graph;
  hash: string;
  cache: EngineCache;
  head: BackboneHead;
  /** The input side when options.inputSize changed it from the source's own, else undefined. */
  resizedTo: number | undefined;
}

async function resolveGraph(name: string, options: GraphOptions): Promise<ResolvedGraph> {
  validateGraphOptions(options);
  const spec = resolveBackbone(name, {
    ...(options.featureLayer === undefined ? {} : { featureLayer: options.featureLayer }),
    ...(options.weights === undefined ? {} : { weights: options.weights }),
  });
  const cache = new EngineCache(options.cacheDir);
  const { graph: full, hash } = await sourceGraph(spec, cache);
  const head = options.head ?? 'features';
  let graph: Graph;
  if (head === 'classifier') {
    const classifier = spec.classifierLayer ?? (spec.format === 'keras-h5' && full.ops.some((op) => op.name === 'predictions') ? 'predictions' : undefined);
    if (!classifier) {
      throw new BackboneError(`backbone '${spec.name}' has no classifier${spec.format === 'keras-h5' ? ` in ${spec.source} (a with-top weight file has one)` : ''}; head must be 'features'`);
    }
    graph = prune(full, classifier);
  } else {
    if (!full.ops.some((op) => op.name === spec.featureLayer)) {
      throw new BackboneError(`feature layer '${spec.featureLayer}' is not a layer of '${spec.name}'; layers: ${full.ops.map((op) => op.name).join(', ')}`);
    }
    graph = featureGraph(full, spec.featureLayer);
  }
  const resized = options.inputSize === undefined ? graph : withInputSize(graph, options.inputSize);
  return { spec, graph: resized, hash, cache, head, resizedTo: resized === graph ? undefined : options.inputSize };
}

/**
 * The backbone as IR: the whole network to its head, or with `part` only the trunk before `cut` or the tail
 * from `cut` on.
 */
export async function backboneGraph(name: string, options: GraphOptions & { cut?: string; part?: 'trunk' | 'tail' } = {}): Promise<Graph> {
  const { graph, spec } = await resolveGraph(name, options);
  if (options.cut === undefined) return graph;
  const cut = resolveCut(spec, options.cut);
  return options.part === 'tail' ? tailGraph(graph, cut) : trunkGraph(graph, cut);
}

/**
 * Loads a backbone for frozen forward passes: on ONNX Runtime by default (the ONNX file is cached by weights
 * hash, cut and head), or with engine 'wasm' on tfjs-wasm worker_threads.
 */
export async function loadBackbone(name: string, options: LoadBackboneOptions = {}): Promise<Backbone> {
  const batchSize = options.batchSize ?? 32;
  const threads = options.threads ?? availableParallelism();
  check(Number.isInteger(batchSize) && batchSize > 0, 'batchSize', 'a positive integer', options.batchSize);
  const workers = options.workers ?? availableParallelism();
  const engine = options.engine ?? 'onnx';
  check(Number.isInteger(threads) && threads > 0, 'threads', 'a positive integer', options.threads);
  check(Number.isInteger(workers) && workers > 0, 'workers', 'a positive integer', options.workers);
  check(ENGINES.includes(engine), 'engine', `one of ${ENGINES.join(', ')}`, options.engine);
  if (options.cut !== undefined) check(typeof options.cut === 'string' && options.cut !== '', 'cut', 'a layer name or block prefix', options.cut);
  const { spec, graph: whole, hash, cache, head, resizedTo } = await resolveGraph(name, options);
  // A Keras layer index (e.g. '221') becomes that layer's name here.
  const cut = options.cut === undefined ? undefined : resolveCut(spec, options.cut);
  const graph = cut === undefined ? whole : trunkGraph(whole, cut);
  const shapes = inferShapes(graph);
  const outputShape = shapes.get(graph.output)!;
  const key = [slug(spec.format === 'tfjs-layers' ? 'tfjs' : spec.name), hash.slice(0, 16), `v${ENGINE_CACHE_VERSION}`, head, head === 'features' ? slug(spec.featureLayer) : '', cut ? `cut-${slug(cut)}` : 'full', resizedTo ? `size-${resizedTo}` : '']
    .filter(Boolean)
    .join('-');
  const inputShape = graph.inputShape;
  let run: (data: Float32Array, n: number) => Promise<Float32Array>;
  let release: () => Promise<void>;
  if (engine === 'wasm') {
    const pool = await WasmForwardPool.create(graph, { workers });
    run = (data, n) => pool.forward(data, n);
    release = () => pool.dispose();
  } else {
    const bytes = cache.getOrCreate(`${key}.onnx`, () => exportOnnx(graph, { docString: `${spec.source} sha256 ${hash}` }));
    const session = await ort.InferenceSession.create(bytes, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      // No busy-waiting between runs: the tail's session and sharp share the cores (see onnx-tail.ts).
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
    run = async (data, n) => {
      const result = await session.run({ [ONNX_INPUT]: new ort.Tensor('float32', data, [n, ...inputShape]) });
      const output = result[ONNX_OUTPUT]!;
      const values = output.data as Float32Array;
      output.dispose();
      return values;
    };
    release = () => session.release();
  }
  const imageSize = inputShape.reduce((a, b) => a * b, 1);
  const outputSize = outputShape.reduce((a, b) => a * b, 1);
  let disposed = false;

  const forward = async (batch: Float32Array | Uint8Array | tf.Tensor, n?: number): Promise<Float32Array> => {
    if (disposed) throw new BackboneError(`backbone '${spec.name}' was disposed`);
    let data: Float32Array;
    if (batch instanceof tf.Tensor) {
      const expected = [batch.shape[0], ...inputShape];
      if (batch.rank !== 4 || batch.shape.some((d, i) => d !== expected[i])) {
        throw new BackboneError(`forward: tensor shape [${batch.shape.join(', ')}], expected [n, ${inputShape.join(', ')}]`);
      }
      const values = await batch.data();
      data = values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>);
    } else if (batch instanceof Float32Array) {
      data = batch;
    } else if (batch instanceof Uint8Array) {
      data = Float32Array.from(batch);
    } else {
      throw new BackboneError('forward: batch must be a Float32Array, Uint8Array or tfjs tensor');
    }
    const count = n ?? data.length / imageSize;
    check(Number.isInteger(count) && count >= 0, 'n', 'a whole number of images', count);
    if (data.length < count * imageSize) {
      throw new BackboneError(`forward: ${data.length} values for ${count} images of [${inputShape.join(', ')}] (${count * imageSize} needed)`);
    }
    const out = new Float32Array(count * outputSize);
    for (let start = 0; start < count; start += batchSize) {
      const size = Math.min(batchSize, count - start);
      const chunk = data.subarray(start * imageSize, (start + size) * imageSize);
      out.set(await run(chunk, size), start * outputSize);
    }
    return out;
  };

  return {
    name: spec.name,
    spec,
    inputSize: inputShape[0]!,
    inputShape,
    outputShape,
    outputSize,
    cut,
    outputLayer: cut === undefined ? graph.output : cutTensor(whole, cut),
    forward,
    async dispose() {
      if (disposed) return;
      disposed = true;
      await release();
    },
  };
}

export interface BuildTfjsModelOptions extends GraphOptions {
  /**
   * Build only the tail starting at this layer or block prefix (e.g. 'block_16'); its input is the cut
   * activation that loadBackbone(name, { cut }) returns. Omit for the whole network.
   */
  from?: string;
}

/** The backbone (or its tail) as a tfjs-layers model with float32 weights and the engine's layer names. */
export async function buildTfjsModel(name: string, options: BuildTfjsModelOptions = {}): Promise<tfl.LayersModel> {
  if (options.from !== undefined) check(typeof options.from === 'string' && options.from !== '', 'from', 'a layer name or block prefix', options.from);
  const { spec, graph } = await resolveGraph(name, options);
  const from = options.from === undefined ? undefined : resolveCut(spec, options.from);
  const part = from === undefined ? graph : tailGraph(graph, from);
  return buildTfjsLayersModel(part, slug(from ? `${spec.name}-from-${from}` : spec.name));
}
