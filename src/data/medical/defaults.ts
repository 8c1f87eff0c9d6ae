/**
 * Defaults of the DICOM/NIfTI readers, in one place so they can later move into the project's config module.
 */
export const MEDICAL_DEFAULTS = {
  /** Lung window (Hounsfield units): shows parenchyma, ground-glass and consolidation. */
  window: { level: -600, width: 1500 },
  /** Rows or columns above this are refused before any pixel buffer is allocated. */
  maxRows: 4096,
  maxColumns: 4096,
  /** Rows x columns above this are refused (a 4096 x 4096 slice is 64 MiB as Float32). */
  maxPixelsPerSlice: 4096 * 4096,
  /** NIfTI volumes with more voxels are refused before reading the data (512 x 512 x 1500). */
  maxVoxels: 512 * 512 * 1500,
  /** Files larger than this are refused before reading (also the gunzip output cap for .nii.gz). */
  maxFileBytes: 2 * 1024 ** 3,
  /**
   * A slice counts as axial when |cos| between its normal and the patient's head-foot axis is at least this
   * (0.8 is about 37 degrees: tilted-gantry CT is still axial, coronal and sagittal are not).
   */
  minAxialCosine: 0.8,
  /** Windowing: 'fixed' uses `window`; 'file' uses the file's first Window Center/Width when present. */
  windowSource: 'fixed' as 'fixed' | 'file',
} as const;

export type MedicalDefaults = typeof MEDICAL_DEFAULTS;
