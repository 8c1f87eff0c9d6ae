/**
 * Medical-image input for inference: DICOM slices and series, NIfTI volumes, windowing to 8-bit RGB.
 *
 * Typical use:
 *   const slice = await readDicomSlice('a.dcm');           // slice.hu in HU, slice.warnings
 *   const rgb = sliceToRgb(slice, { window: 'file' });      // Uint8Array, height x width x 3
 *   const { series, failures } = await readDicomSeries(folder);
 *   const volume = await readNifti('ct.nii.gz'); volume.getSlice(0).hu;
 */
import type { DicomSlice } from './dicom.ts';
import type { NiftiSlice } from './nifti.ts';
import { resolveWindow, windowToRgb } from './window.ts';
import type { WindowSetting, WindowSpec } from './window.ts';

export { MEDICAL_DEFAULTS } from './defaults.ts';
export type { MedicalDefaults } from './defaults.ts';
export { MedicalImageError } from './errors.ts';
export type { MedicalErrorCode } from './errors.ts';
export { readDicomHeader, readDicomSlice, sliceNormal } from './dicom.ts';
export type { DicomHeader, DicomLimits, DicomMeta, DicomSlice, Orientation, ReadDicomOptions, Vec3 } from './dicom.ts';
export { readDicomSeries } from './series.ts';
export type { DicomSeries, DicomSeriesResult, SeriesOrder, SeriesSlice } from './series.ts';
export { readNifti, mapAxes } from './nifti.ts';
export type { AxisMapping, NiftiSlice, NiftiVolume, OrientationSource, ReadNiftiOptions } from './nifti.ts';
export { resolveWindow, windowToRgb } from './window.ts';
export type { WindowSetting, WindowSpec, WindowToRgbOptions } from './window.ts';
export { sniffMedical, isDicom, isNiftiHeader, isGzip } from './sniff.ts';
export type { MedicalKind } from './sniff.ts';
export { transferSyntaxInfo } from './transfer-syntax.ts';
export type { TransferSyntaxInfo } from './transfer-syntax.ts';
export { OPENJPEG_PACKAGE } from './jpeg2000.ts';

export interface SliceRgb {
  rgb: Uint8Array;
  width: number;
  height: number;
  /** The window actually used. */
  window: WindowSpec;
  /** Set when 'file' was asked for but the file has no window, so the default was used. */
  warning?: string;
}

/**
 * Windows a DICOM or NIfTI slice to 8-bit RGB (HWC, R = G = B). 'file' uses the DICOM file's window and falls
 * back to the default lung window (with a warning) when there is none; MONOCHROME1 is displayed inverted.
 */
export function sliceToRgb(slice: DicomSlice | NiftiSlice, options: { window?: WindowSetting } = {}): SliceRgb {
  const meta = 'meta' in slice ? slice.meta : undefined;
  const { window, fromFile } = resolveWindow(options.window, meta?.window);
  const rgb = windowToRgb(slice.hu, slice.width, slice.height, {
    window,
    invert: meta?.photometricInterpretation === 'MONOCHROME1',
  });
  const warning =
    options.window === 'file' && !fromFile
      ? `no window in the file: the default window (level ${window.level}, width ${window.width}) was used`
      : undefined;
  return { rgb, width: slice.width, height: slice.height, window, ...(warning ? { warning } : {}) };
}
