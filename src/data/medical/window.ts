/**
 * Windowing of Hounsfield units (or any rescaled values) to 8-bit RGB, as a radiologist's viewer would.
 */
import { MEDICAL_DEFAULTS } from './defaults.ts';

export interface WindowSpec {
  /** Window centre (DICOM Window Center), in the units of the values. */
  level: number;
  /** Window width, at least 1. */
  width: number;
}

/** A fixed window, or 'file' for the window stored in the DICOM file (first Window Center/Width value). */
export type WindowSetting = WindowSpec | 'file';

export interface WindowToRgbOptions {
  /** Default: the lung window of MEDICAL_DEFAULTS (level -600, width 1500). */
  window?: WindowSetting;
  /** The file's window, used when `window` is 'file'; when that is missing the default window is used. */
  fileWindow?: WindowSpec;
  /** Invert grey levels (MONOCHROME1: low values are displayed white). */
  invert?: boolean;
}

/** Picks the window to use; `fromFile` says whether the file's window was used. */
export function resolveWindow(
  setting: WindowSetting | undefined,
  fileWindow: WindowSpec | undefined,
): { window: WindowSpec; fromFile: boolean } {
  if (setting === 'file') {
    if (fileWindow) return { window: fileWindow, fromFile: true };
    return { window: { ...MEDICAL_DEFAULTS.window }, fromFile: false };
  }
  return { window: setting ?? { ...MEDICAL_DEFAULTS.window }, fromFile: false };
}

/**
 * Maps values to grey levels with the DICOM linear VOI function (PS3.3 C.11.2.1.2.1), then to RGB with
 * R = G = B. Returns height * width * 3 bytes, row-major (HWC).
 */
export function windowToRgb(
  values: Float32Array,
  width: number,
  height: number,
  options: WindowToRgbOptions = {},
): Uint8Array {
  const pixels = width * height;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`invalid image size ${width}x${height}`);
  }
  if (values.length !== pixels) throw new RangeError(`expected ${pixels} values for ${width}x${height}, got ${values.length}`);
  const { window } = resolveWindow(options.window, options.fileWindow);
  if (!Number.isFinite(window.level) || !Number.isFinite(window.width) || window.width < 1) {
    throw new RangeError(`invalid window level ${window.level}, width ${window.width} (width must be >= 1)`);
  }
  const grey = greyLookup(window, options.invert ?? false);
  const rgb = new Uint8Array(pixels * 3);
  for (let i = 0; i < pixels; i++) {
    const level = grey(values[i] as number);
    rgb[3 * i] = level;
    rgb[3 * i + 1] = level;
    rgb[3 * i + 2] = level;
  }
  return rgb;
}

function greyLookup(window: WindowSpec, invert: boolean): (value: number) => number {
  const center = window.level - 0.5;
  const span = window.width - 1;
  const low = center - span / 2;
  const high = center + span / 2;
  return (value) => {
    let grey: number;
    if (!(value > low)) grey = 0; // also NaN
    else if (value > high) grey = 255;
    else grey = span === 0 ? 255 : Math.round(((value - center) / span + 0.5) * 255);
    return invert ? 255 - grey : grey;
  };
}
