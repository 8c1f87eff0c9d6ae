/** Reading and writing tfjs layers model directories (model.json + weight files) from Node, without tfjs-node. */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

interface ModelJson {
  modelTopology: object;
  weightsManifest: Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }>;
  format?: string;
}

/** Loads `path/model.json` and its weight shards. */
export async function loadTfjsLayersModel(modelJsonPath: string): Promise<tfl.LayersModel> {
  const json = JSON.parse(readFileSync(modelJsonPath, 'utf8')) as ModelJson;
  if (!json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw new Error(`${modelJsonPath}: not a tfjs layers model (modelTopology and weightsManifest expected)`);
  }
  const base = dirname(modelJsonPath);
  const specs = json.weightsManifest.flatMap((group) => group.weights);
  const shards = json.weightsManifest.flatMap((group) => group.paths.map((p) => readFileSync(join(base, p))));
  const bytes = Buffer.concat(shards);
  const weightData = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  return tfl.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: specs, weightData }));
}

/** Saves a layers model as `dir/model.json` + `dir/weights.bin`. */
export async function saveTfjsLayersModel(model: tfl.LayersModel, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const data = artifacts.weightData;
      const buffers = data === undefined ? [] : Array.isArray(data) ? data : [data];
      writeFileSync(join(dir, 'weights.bin'), Buffer.concat(buffers.map((b) => new Uint8Array(b))));
      const json: ModelJson = {
        format: 'layers-model',
        modelTopology: artifacts.modelTopology as object,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs ?? [] }],
      };
      writeFileSync(join(dir, 'model.json'), JSON.stringify(json));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
}
