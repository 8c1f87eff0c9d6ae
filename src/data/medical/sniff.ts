/** Content sniffing: which medical format a buffer holds, from its bytes alone (never from a file name). */
import { constants, gunzipSync } from 'node:zlib';

export type MedicalKind = 'dicom' | 'nifti';

const NIFTI1_HEADER_BYTES = 348;
const NIFTI2_HEADER_BYTES = 540;

export function sniffMedical(bytes: Uint8Array): MedicalKind | null {
  if (isDicom(bytes)) return 'dicom';
  if (isNiftiHeader(bytes)) return 'nifti';
  if (isGzip(bytes)) {
    const head = gunzipHead(bytes, NIFTI2_HEADER_BYTES);
    if (head && isNiftiHeader(head)) return 'nifti';
  }
  return null;
}

export function isDicom(bytes: Uint8Array): boolean {
  return bytes.length >= 132 && ascii(bytes, 128, 4) === 'DICM';
}

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** NIfTI-1 (sizeof_hdr 348, magic "n+1"/"ni1" at 344) or NIfTI-2 (540, "n+2"/"ni2" at 4), either byte order. */
export function isNiftiHeader(bytes: Uint8Array): boolean {
  if (bytes.length < 8) return false;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const sizeLE = view.getInt32(0, true);
  const sizeBE = view.getInt32(0, false);
  if ((sizeLE === NIFTI1_HEADER_BYTES || sizeBE === NIFTI1_HEADER_BYTES) && bytes.length >= NIFTI1_HEADER_BYTES) {
    const magic = ascii(bytes, 344, 4);
    return magic === 'n+1\0' || magic === 'ni1\0';
  }
  if (sizeLE === NIFTI2_HEADER_BYTES || sizeBE === NIFTI2_HEADER_BYTES) {
    const magic = ascii(bytes, 4, 3);
    return magic === 'n+2' || magic === 'ni2';
  }
  return false;
}

/** Inflates only the start of a gzip stream: enough to read a header without inflating a whole volume. */
export function gunzipHead(bytes: Uint8Array, wanted: number): Uint8Array | null {
  try {
    const input = bytes.subarray(0, Math.min(bytes.length, 4096));
    return gunzipSync(input, { finishFlush: constants.Z_SYNC_FLUSH }).subarray(0, wanted);
  } catch {
    return null;
  }
}

function ascii(bytes: Uint8Array, start: number, length: number): string {
  let text = '';
  for (let i = start; i < start + length && i < bytes.length; i++) text += String.fromCharCode(bytes[i] as number);
  return text;
}
