/**
 * The converted-model cache under .cache/engine/: IR graphs keyed by the source file's sha256, ONNX graphs
 * keyed by that hash plus the cut point and output. Files are written to a temporary name and renamed, so a
 * crash or a concurrent writer never leaves a half-written entry.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../config/index.ts';
import type { Graph, Op } from './ir.ts';

export const DEFAULT_ENGINE_CACHE = join(PROJECT_ROOT, '.cache', 'engine');
/** Part of every cache key: bump it when the importers or exporters change what they produce. */
export const ENGINE_CACHE_VERSION = 1;

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

export function writeAtomic(path: string, data: Uint8Array | string): void {
  const temporary = `${path}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(temporary, data);
  renameSync(temporary, path);
}

/** A safe file-name fragment from a layer or cut name. */
export function slug(text: string): string {
  return text.replace(/[^A-Za-z0-9_.-]+/g, '-');
}

export class EngineCache {
  constructor(readonly dir: string = DEFAULT_ENGINE_CACHE) {}

  path(file: string): string {
    mkdirSync(this.dir, { recursive: true });
    return join(this.dir, file);
  }

  /** Returns the cached bytes for `file`, or builds, stores and returns them. */
  getOrCreate(file: string, build: () => Uint8Array): Uint8Array {
    const path = this.path(file);
    if (existsSync(path)) return readFileSync(path);
    const bytes = build();
    writeAtomic(path, bytes);
    return bytes;
  }
}

const MAGIC = 'CCIR1';

/** Serializes a graph: magic, JSON length (uint32 LE), JSON with Float32Arrays replaced by offsets, float32 data. */
export function serializeGraph(graph: Graph): Uint8Array {
  const arrays: Float32Array[] = [];
  let offset = 0;
  const json = JSON.stringify(graph, (_key, value: unknown) => {
    if (value instanceof Float32Array) {
      arrays.push(value);
      const ref = { $f32: [offset, value.length] };
      offset += value.length;
      return ref;
    }
    return value;
  });
  const header = new TextEncoder().encode(json);
  const headerBytes = Math.ceil((MAGIC.length + 4 + header.length) / 4) * 4;
  const out = new Uint8Array(headerBytes + offset * 4);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(MAGIC.length, header.length, true);
  out.set(header, MAGIC.length + 4);
  const floats = new Float32Array(out.buffer, headerBytes, offset);
  let at = 0;
  for (const array of arrays) {
    floats.set(array, at);
    at += array.length;
  }
  return out;
}

export function deserializeGraph(bytes: Uint8Array): Graph {
  if (new TextDecoder().decode(bytes.subarray(0, MAGIC.length)) !== MAGIC) throw new Error('not a serialized engine graph');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.getUint32(MAGIC.length, true);
  const json = new TextDecoder().decode(bytes.subarray(MAGIC.length + 4, MAGIC.length + 4 + length));
  const headerBytes = Math.ceil((MAGIC.length + 4 + length) / 4) * 4;
  // Copy into an aligned buffer: `bytes` may be a Node Buffer, a view into a shared pool at any offset.
  const data = new Float32Array((bytes.byteLength - headerBytes) / 4);
  new Uint8Array(data.buffer).set(bytes.subarray(headerBytes));
  return JSON.parse(json, (_key, value: unknown) => {
    if (value && typeof value === 'object' && '$f32' in value) {
      const [start, count] = (value as { $f32: [number, number] }).$f32;
      return data.slice(start, start + count);
    }
    return value;
  }) as Graph & { ops: Op[] };
}
