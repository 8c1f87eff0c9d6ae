/**
 * worker_threads running this project's TypeScript modules. A worker does not inherit the parent's
 * `--import tsx`, and in Node 20 its entry module is not loaded through a loader registered by flags, so the
 * worker registers tsx's loader itself before importing its entry point.
 */
import { Worker } from 'node:worker_threads';
import type { WorkerOptions } from 'node:worker_threads';

export function spawnTsWorker(entry: URL, options: WorkerOptions = {}): Worker {
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry, options);
  const bootstrap = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})
  .then(({ register }) => { register(); return import(${JSON.stringify(entry.href)}); })
  .catch((error) => { console.error(error); process.exit(2); });`;
  return new Worker(bootstrap, { ...options, eval: true });
}
