/**
 * Decoded-image cache: raw RGB bytes on disk keyed by the file's content hash and the target size, so the
 * second epoch and the second run skip decoding and resizing. A file's hash is remembered by
 * (path, size, mtime), in memory and in an append-only index beside the entries (as git's index does), so
 * an unchanged file is neither decoded nor hashed again.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { appendFile, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DecodeLimits, DecodedImage } from './decode.ts';
import { decodeBuffer, readImageFile } from './decode.ts';

/** Bump when decoding changes what it produces, so old cache entries are not used. */
const CACHE_VERSION = 1;

export interface CachedImage extends DecodedImage {
  sha256: string;
}

export class ImageCache {
  private readonly hashes = new Map<string, { key: string; sha256: string }>();
  private readonly indexFile: string;

  constructor(
    readonly dir: string,
    readonly limits: DecodeLimits,
  ) {
    this.indexFile = join(dir, `hash-index-v${CACHE_VERSION}.jsonl`);
    if (existsSync(this.indexFile)) {
      for (const line of readFileSync(this.indexFile, 'utf8').split('\n')) {
        // A line cut short by a stopped run is skipped; its file is simply hashed again.
        try {
          const { path, key, sha256 } = JSON.parse(line) as { path: string; key: string; sha256: string };
          this.hashes.set(path, { key, sha256 });
        } catch {
          continue;
        }
      }
    }
  }

  private async remember(path: string, key: string, sha256: string): Promise<void> {
    this.hashes.set(path, { key, sha256 });
    await mkdir(this.dir, { recursive: true });
    await appendFile(this.indexFile, `${JSON.stringify({ path, key, sha256 })}\n`);
  }

  /** sha256 of a file's bytes, remembered while the file is unchanged. */
  async sha256(path: string): Promise<string> {
    const info = await stat(path);
    const key = `${info.size}:${info.mtimeMs}`;
    const known = this.hashes.get(path);
    if (known?.key === key) return known.sha256;
    const sha256 = createHash('sha256').update(await readImageFile(path, this.limits)).digest('hex');
    await this.remember(path, key, sha256);
    return sha256;
  }

  private entryPath(sha256: string, size: number): string {
    return join(this.dir, `v${CACHE_VERSION}-${size}`, sha256.slice(0, 2), `${sha256}.rgb`);
  }

  /** The image decoded and resized to size x size, from the cache when present. */
  async load(path: string, size: number): Promise<CachedImage> {
    const info = await stat(path).catch(() => null);
    const known = info ? this.hashes.get(path) : undefined;
    if (info && known?.key === `${info.size}:${info.mtimeMs}`) {
      const cached = await readFile(this.entryPath(known.sha256, size)).catch(() => null);
      if (cached?.length === size * size * 3) return { data: cached, width: size, height: size, sha256: known.sha256 };
    }
    const buffer = await readImageFile(path, this.limits);
    const sha256 = createHash('sha256').update(buffer).digest('hex');
    const key = info ? `${info.size}:${info.mtimeMs}` : undefined;
    if (key && (known?.key !== key || known.sha256 !== sha256)) await this.remember(path, key, sha256);
    const entry = this.entryPath(sha256, size);
    const cached = await readFile(entry).catch(() => null);
    if (cached?.length === size * size * 3) return { data: cached, width: size, height: size, sha256 };
    const decoded = await decodeBuffer(buffer, { size, limits: this.limits, name: path });
    await mkdir(join(entry, '..'), { recursive: true });
    // Write then rename, so a run stopped mid-write never leaves a short entry behind.
    const temporary = `${entry}.${process.pid}.tmp`;
    await writeFile(temporary, decoded.data);
    await rename(temporary, entry);
    return { data: decoded.data, width: size, height: size, sha256 };
  }
}
