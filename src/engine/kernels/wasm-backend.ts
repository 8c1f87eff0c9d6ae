// Starts tfjs on the wasm backend in Node: the .wasm binaries are read from the installed package's dist folder.
import * as tf from '@tensorflow/tfjs-core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

let pathsSet = false;

export function wasmDistDirectory(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + '/';
}

/** Makes 'wasm' the active tfjs backend (idempotent). Training kernels are registered by the caller. */
export async function initWasmBackend(): Promise<void> {
  if (!pathsSet) {
    setWasmPaths(wasmDistDirectory());
    pathsSet = true;
  }
  if (tf.getBackend() === 'wasm') return;
  const ok = await tf.setBackend('wasm');
  if (!ok) throw new Error('could not initialise the tfjs wasm backend');
}
