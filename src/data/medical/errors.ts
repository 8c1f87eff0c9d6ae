export type MedicalErrorCode =
  | 'io'
  | 'not-dicom'
  | 'not-nifti'
  | 'truncated'
  | 'corrupt'
  | 'unsupported-syntax'
  | 'unsupported-image'
  | 'too-large';

/** A DICOM or NIfTI input that cannot be read. `file` is the path (or a label for in-memory input). */
export class MedicalImageError extends Error {
  override readonly name = 'MedicalImageError';
  readonly file: string;
  readonly reason: string;
  readonly code: MedicalErrorCode;

  constructor(file: string, code: MedicalErrorCode, reason: string, options?: { cause?: unknown }) {
    super(`${file}: ${reason}`, options);
    this.file = file;
    this.code = code;
    this.reason = reason;
  }
}

/** dicom-parser throws strings or `{ exception, dataSet }` objects instead of Errors. */
export function describeThrown(thrown: unknown): string {
  if (thrown instanceof Error) return thrown.message;
  if (typeof thrown === 'string') return thrown;
  if (thrown && typeof thrown === 'object' && 'exception' in thrown) return String(thrown.exception);
  return String(thrown);
}
