/** Paths of the DICOM/NIfTI fixtures in ../shared and small raw-byte readers used to derive expected values. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SHARED_ROOT } from '../../src/config/index.ts';

export const SAMPLES = join(SHARED_ROOT, 'data', 'dicom-samples');
export const sample = (...parts: string[]): string => join(SAMPLES, ...parts);

/**
 * Offset of the Pixel Data value, found without a DICOM parser: the last (7FE0,0010) tag in the file, followed
 * by "OW"/"OB" + 2 reserved bytes + 4-byte length (explicit VR) or a 4-byte length (implicit VR).
 */
export function rawPixelDataOffset(bytes: Uint8Array): { offset: number; length: number } {
  const tag = [0xe0, 0x7f, 0x10, 0x00];
  for (let i = bytes.length - 4; i >= 132; i--) {
    if (tag.every((byte, k) => bytes[i + k] === byte)) {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const vr = String.fromCharCode(bytes[i + 4] as number, bytes[i + 5] as number);
      if (vr === 'OW' || vr === 'OB') return { offset: i + 12, length: view.getUint32(i + 8, true) };
      return { offset: i + 8, length: view.getUint32(i + 4, true) };
    }
  }
  throw new Error('no Pixel Data tag');
}

/** Value of a short explicit-VR string element (e.g. DS "Rescale Intercept"), found by scanning for its tag. */
export function rawExplicitString(bytes: Uint8Array, group: number, element: number): string {
  for (let i = 132; i < bytes.length - 8; i++) {
    if (
      bytes[i] === (group & 0xff) &&
      bytes[i + 1] === group >> 8 &&
      bytes[i + 2] === (element & 0xff) &&
      bytes[i + 3] === element >> 8 &&
      bytes[i + 4] !== undefined &&
      /[A-Z]{2}/.test(String.fromCharCode(bytes[i + 4] as number, bytes[i + 5] as number))
    ) {
      const length = (bytes[i + 6] as number) | ((bytes[i + 7] as number) << 8);
      return Buffer.from(bytes.subarray(i + 8, i + 8 + length)).toString('latin1').trim();
    }
  }
  throw new Error(`tag ${group.toString(16)},${element.toString(16)} not found`);
}

export function readBytes(path: string): Uint8Array {
  const buffer = readFileSync(path);
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** Copy of a file's bytes, so a test can patch it without touching the shared fixture. */
export function copyBytes(path: string): Uint8Array {
  return new Uint8Array(readFileSync(path));
}

export function indexOfBytes(haystack: Uint8Array, needle: number[], from = 0): number {
  outer: for (let i = from; i <= haystack.length - needle.length; i++) {
    for (let k = 0; k < needle.length; k++) if (haystack[i + k] !== needle[k]) continue outer;
    return i;
  }
  return -1;
}
