/**
 * DICOM single-slice reading: header metadata, pixel decoding and conversion to Hounsfield units.
 */
import { readFile, stat } from 'node:fs/promises';
import { inflateRawSync } from 'node:zlib';
import dicomParser from 'dicom-parser';
import type { DataSet, Element } from 'dicom-parser';
import { MEDICAL_DEFAULTS } from './defaults.ts';
import { MedicalImageError, describeThrown } from './errors.ts';
import { decodeJpegLossless, decodeRle } from './codecs.ts';
import type { SampleWords } from './codecs.ts';
import { Jpeg2000UnavailableError, decodeJpeg2000 } from './jpeg2000.ts';
import { describeTransferSyntax, transferSyntaxInfo } from './transfer-syntax.ts';
import type { TransferSyntaxInfo } from './transfer-syntax.ts';
import type { WindowSpec } from './window.ts';

export type Vec3 = [number, number, number];
export type Orientation = [number, number, number, number, number, number];

export interface DicomMeta {
  modality: string | undefined;
  sopClassUid: string | undefined;
  transferSyntax: { uid: string; name: string };
  rows: number;
  cols: number;
  samplesPerPixel: number;
  numberOfFrames: number;
  bitsAllocated: number;
  bitsStored: number;
  highBit: number;
  /** 0 unsigned, 1 two's complement. */
  pixelRepresentation: number;
  photometricInterpretation: string;
  rescaleSlope: number;
  rescaleIntercept: number;
  /** False when Rescale Slope or Intercept is absent (slope 1 / intercept 0 were used). */
  hasRescale: boolean;
  /** Row spacing, column spacing in mm (DICOM order). */
  pixelSpacing: [number, number] | undefined;
  sliceThickness: number | undefined;
  /** Image Position (Patient): centre of the first transmitted pixel, in mm (LPS). */
  imagePosition: Vec3 | undefined;
  /** Image Orientation (Patient): row direction cosines then column direction cosines (LPS). */
  orientation: Orientation | undefined;
  sliceLocation: number | undefined;
  instanceNumber: number | undefined;
  seriesInstanceUid: string | undefined;
  studyInstanceUid: string | undefined;
  sopInstanceUid: string | undefined;
  /** First Window Center / Window Width values of the file, when present and valid. */
  window: WindowSpec | undefined;
}

export interface DicomHeader {
  file: string;
  meta: DicomMeta;
  warnings: string[];
}

export interface DicomSlice extends DicomHeader {
  /** Rescaled values (Hounsfield units for CT), row-major, length width * height. */
  hu: Float32Array;
  width: number;
  height: number;
}

export interface DicomLimits {
  maxRows: number;
  maxColumns: number;
  maxPixelsPerSlice: number;
  maxFileBytes: number;
}

export interface ReadDicomOptions {
  /** Name used in errors and results when the input is a buffer. Defaults to the path, or '<buffer>'. */
  file?: string;
  /** Zero-based frame of a multi-frame object. Default 0. */
  frame?: number;
  limits?: Partial<DicomLimits>;
  /** |cos| between slice normal and head-foot axis below which a slice is reported as not axial. */
  minAxialCosine?: number;
}

const TAG = {
  transferSyntax: 'x00020010',
  sopClassUid: 'x00080016',
  sopInstanceUid: 'x00080018',
  modality: 'x00080060',
  sliceThickness: 'x00180050',
  studyInstanceUid: 'x0020000d',
  seriesInstanceUid: 'x0020000e',
  instanceNumber: 'x00200013',
  imagePosition: 'x00200032',
  orientation: 'x00200037',
  sliceLocation: 'x00201041',
  samplesPerPixel: 'x00280002',
  photometric: 'x00280004',
  numberOfFrames: 'x00280008',
  rows: 'x00280010',
  columns: 'x00280011',
  pixelSpacing: 'x00280030',
  bitsAllocated: 'x00280100',
  bitsStored: 'x00280101',
  highBit: 'x00280102',
  pixelRepresentation: 'x00280103',
  windowCenter: 'x00281050',
  windowWidth: 'x00281051',
  rescaleIntercept: 'x00281052',
  rescaleSlope: 'x00281053',
  pixelData: 'x7fe00010',
} as const;

interface ParsedDicom {
  dataSet: DataSet;
  header: DicomHeader;
  syntax: TransferSyntaxInfo;
}

/** Reads the header of a DICOM file (stops before Pixel Data), e.g. to sort a series before decoding. */
export async function readDicomHeader(input: string | Uint8Array, options: ReadDicomOptions = {}): Promise<DicomHeader> {
  const { bytes, file } = await loadInput(input, options);
  return parse(bytes, file, options, true).header;
}

/** Reads one DICOM slice and converts it to Hounsfield units (Rescale Slope/Intercept applied). */
export async function readDicomSlice(input: string | Uint8Array, options: ReadDicomOptions = {}): Promise<DicomSlice> {
  const { bytes, file } = await loadInput(input, options);
  const parsed = parse(bytes, file, options, false);
  const { meta } = parsed.header;
  const frame = options.frame ?? 0;
  if (!Number.isInteger(frame) || frame < 0 || frame >= meta.numberOfFrames) {
    throw new MedicalImageError(file, 'unsupported-image', `frame ${frame} requested, file has ${meta.numberOfFrames}`);
  }
  const words = await decodeFrame(parsed, frame);
  const hu = wordsToHu(words, meta);
  return { ...parsed.header, hu, width: meta.cols, height: meta.rows };
}

async function loadInput(
  input: string | Uint8Array,
  options: ReadDicomOptions,
): Promise<{ bytes: Uint8Array; file: string }> {
  const maxFileBytes = options.limits?.maxFileBytes ?? MEDICAL_DEFAULTS.maxFileBytes;
  if (typeof input !== 'string') {
    const file = options.file ?? '<buffer>';
    if (input.byteLength > maxFileBytes) {
      throw new MedicalImageError(file, 'too-large', `${input.byteLength} bytes exceeds the limit of ${maxFileBytes}`);
    }
    return { bytes: input, file };
  }
  const file = options.file ?? input;
  try {
    const { size } = await stat(input);
    if (size > maxFileBytes) {
      throw new MedicalImageError(file, 'too-large', `${size} bytes exceeds the limit of ${maxFileBytes}`);
    }
    const buffer = await readFile(input);
    return { bytes: new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength), file };
  } catch (error) {
    if (error instanceof MedicalImageError) throw error;
    throw new MedicalImageError(file, 'io', `cannot read file: ${describeThrown(error)}`, { cause: error });
  }
}

function hasPreamble(bytes: Uint8Array): boolean {
  return bytes.length >= 132 && bytes[128] === 0x44 && bytes[129] === 0x49 && bytes[130] === 0x43 && bytes[131] === 0x4d;
}

function parse(bytes: Uint8Array, file: string, options: ReadDicomOptions, headerOnly: boolean): ParsedDicom {
  if (!hasPreamble(bytes)) {
    throw new MedicalImageError(file, 'not-dicom', 'not a DICOM Part 10 file (no "DICM" at byte 128)');
  }
  let dataSet: DataSet;
  try {
    dataSet = dicomParser.parseDicom(bytes, {
      ...(headerOnly ? { untilTag: TAG.pixelData } : {}),
      // dicom-parser's own Node inflater relies on require(); give it node:zlib directly.
      inflater: (array: Uint8Array, position: number) => inflateDeflated(array, position),
    } as Parameters<typeof dicomParser.parseDicom>[1]);
  } catch (thrown) {
    throw parseFailure(bytes, file, thrown);
  }
  const syntax = transferSyntaxInfo(dataSet.string(TAG.transferSyntax) ?? '');
  const header = extractHeader(dataSet, file, syntax, options);
  return { dataSet, header, syntax };
}

function inflateDeflated(array: Uint8Array, position: number): Uint8Array {
  const inflated = inflateRawSync(array.subarray(position), { maxOutputLength: MEDICAL_DEFAULTS.maxFileBytes });
  const whole = new Uint8Array(position + inflated.length);
  whole.set(array.subarray(0, position), 0);
  whole.set(inflated, position);
  return whole;
}

function parseFailure(bytes: Uint8Array, file: string, thrown: unknown): MedicalImageError {
  const message = describeThrown(thrown);
  if (/overrun|beyond|end of|past the end/i.test(message)) {
    const partial =
      thrown && typeof thrown === 'object' && 'dataSet' in thrown ? (thrown.dataSet as DataSet | undefined) : undefined;
    const pixel = partial?.elements[TAG.pixelData];
    const detail =
      pixel && pixel.dataOffset + pixel.length > bytes.length
        ? `Pixel Data declares ${pixel.length} bytes but only ${Math.max(0, bytes.length - pixel.dataOffset)} are present`
        : `an element runs past the end of the file (${bytes.length} bytes)`;
    return new MedicalImageError(file, 'truncated', `truncated DICOM file: ${detail}`, { cause: thrown });
  }
  if (/DICM prefix not found/i.test(message)) {
    return new MedicalImageError(file, 'not-dicom', 'not a DICOM Part 10 file (no "DICM" at byte 128)');
  }
  return new MedicalImageError(file, 'corrupt', `corrupt DICOM file: ${message}`, { cause: thrown });
}

function numbers(dataSet: DataSet, tag: string, count: number): number[] | undefined {
  const values: number[] = [];
  for (let i = 0; i < count; i++) {
    const value = dataSet.floatString(tag, i);
    if (value === undefined || !Number.isFinite(value)) return undefined;
    values.push(value);
  }
  return values;
}

function optionalNumber(dataSet: DataSet, tag: string): number | undefined {
  const value = dataSet.floatString(tag);
  return value !== undefined && Number.isFinite(value) ? value : undefined;
}

/** Slice normal (row cosines x column cosines); axial slices have it along the head-foot (z) axis. */
export function sliceNormal(orientation: Orientation): Vec3 {
  const [rx, ry, rz, cx, cy, cz] = orientation;
  return [ry * cz - rz * cy, rz * cx - rx * cz, rx * cy - ry * cx];
}

function extractHeader(
  dataSet: DataSet,
  file: string,
  syntax: TransferSyntaxInfo,
  options: ReadDicomOptions,
): DicomHeader {
  const warnings: string[] = dataSet.warnings.map((warning) => `dicom-parser: ${warning}`);
  const rows = dataSet.uint16(TAG.rows);
  const cols = dataSet.uint16(TAG.columns);
  if (rows === undefined || cols === undefined || rows === 0 || cols === 0) {
    throw new MedicalImageError(file, 'unsupported-image', 'no image: Rows/Columns missing or zero');
  }
  const limits = { ...pickLimits(), ...options.limits };
  if (rows > limits.maxRows || cols > limits.maxColumns || rows * cols > limits.maxPixelsPerSlice) {
    throw new MedicalImageError(
      file,
      'too-large',
      `${cols}x${rows} pixels exceeds the limit (${limits.maxColumns}x${limits.maxRows}, ${limits.maxPixelsPerSlice} pixels)`,
    );
  }
  const bitsAllocated = dataSet.uint16(TAG.bitsAllocated) ?? 16;
  const bitsStored = dataSet.uint16(TAG.bitsStored) ?? bitsAllocated;
  const highBit = dataSet.uint16(TAG.highBit) ?? bitsStored - 1;
  const pixelRepresentation = dataSet.uint16(TAG.pixelRepresentation) ?? 0;
  const samplesPerPixel = dataSet.uint16(TAG.samplesPerPixel) ?? 1;
  const photometricInterpretation = (dataSet.string(TAG.photometric) ?? 'MONOCHROME2').toUpperCase();
  const numberOfFrames = Math.max(1, dataSet.intString(TAG.numberOfFrames) ?? 1);

  if (samplesPerPixel !== 1 || !/^MONOCHROME[12]$/.test(photometricInterpretation)) {
    throw new MedicalImageError(
      file,
      'unsupported-image',
      `only grayscale images are supported (Photometric Interpretation ${photometricInterpretation}, Samples per Pixel ${samplesPerPixel})`,
    );
  }
  if (bitsAllocated !== 8 && bitsAllocated !== 16) {
    throw new MedicalImageError(file, 'unsupported-image', `Bits Allocated ${bitsAllocated} is not supported (8 or 16)`);
  }
  if (bitsStored < 1 || bitsStored > bitsAllocated) {
    throw new MedicalImageError(file, 'corrupt', `Bits Stored ${bitsStored} does not fit Bits Allocated ${bitsAllocated}`);
  }
  if (highBit !== bitsStored - 1) {
    warnings.push(`High Bit ${highBit} is not Bits Stored - 1 (${bitsStored - 1}); the low ${bitsStored} bits are used`);
  }

  const slopeValue = optionalNumber(dataSet, TAG.rescaleSlope);
  const interceptValue = optionalNumber(dataSet, TAG.rescaleIntercept);
  const hasRescale = slopeValue !== undefined && interceptValue !== undefined;
  let rescaleSlope = slopeValue ?? 1;
  const rescaleIntercept = interceptValue ?? 0;
  if (!hasRescale) {
    warnings.push('no Rescale Slope/Intercept: stored values are used as they are, they may not be Hounsfield units');
  }
  if (rescaleSlope === 0) {
    warnings.push('Rescale Slope is 0; 1 is used instead');
    rescaleSlope = 1;
  }

  const modality = dataSet.string(TAG.modality)?.toUpperCase();
  if (modality !== 'CT') {
    warnings.push(
      `modality is ${modality ?? 'missing'}, not CT: values are not Hounsfield units and the model was trained on CT`,
    );
  }

  const orientation = numbers(dataSet, TAG.orientation, 6) as Orientation | undefined;
  if (orientation === undefined) {
    warnings.push('no Image Orientation (Patient): the slice is assumed to be axial');
  } else {
    const normal = sliceNormal(orientation);
    const minCosine = options.minAxialCosine ?? MEDICAL_DEFAULTS.minAxialCosine;
    const length = Math.hypot(...normal) || 1;
    if (Math.abs(normal[2]) / length < minCosine) {
      warnings.push(
        `slice is not axial (Image Orientation Patient ${orientation.join('\\')}, normal ${normal
          .map((value) => value.toFixed(2))
          .join(',')}): the model expects axial chest CT slices`,
      );
    }
  }

  if (numberOfFrames > 1) warnings.push(`multi-frame object with ${numberOfFrames} frames: one frame is read`);

  const spacing = numbers(dataSet, TAG.pixelSpacing, 2);
  const center = dataSet.floatString(TAG.windowCenter, 0);
  const width = dataSet.floatString(TAG.windowWidth, 0);
  const window =
    center !== undefined && width !== undefined && Number.isFinite(center) && Number.isFinite(width) && width >= 1
      ? { level: center, width }
      : undefined;

  const meta: DicomMeta = {
    modality,
    sopClassUid: dataSet.string(TAG.sopClassUid),
    transferSyntax: { uid: syntax.uid, name: syntax.name },
    rows,
    cols,
    samplesPerPixel,
    numberOfFrames,
    bitsAllocated,
    bitsStored,
    highBit,
    pixelRepresentation,
    photometricInterpretation,
    rescaleSlope,
    rescaleIntercept,
    hasRescale,
    pixelSpacing: spacing as [number, number] | undefined,
    sliceThickness: optionalNumber(dataSet, TAG.sliceThickness),
    imagePosition: numbers(dataSet, TAG.imagePosition, 3) as Vec3 | undefined,
    orientation,
    sliceLocation: optionalNumber(dataSet, TAG.sliceLocation),
    instanceNumber: dataSet.intString(TAG.instanceNumber),
    seriesInstanceUid: dataSet.string(TAG.seriesInstanceUid),
    studyInstanceUid: dataSet.string(TAG.studyInstanceUid),
    sopInstanceUid: dataSet.string(TAG.sopInstanceUid),
    window,
  };
  return { file, meta, warnings };
}

function pickLimits(): DicomLimits {
  const { maxRows, maxColumns, maxPixelsPerSlice, maxFileBytes } = MEDICAL_DEFAULTS;
  return { maxRows, maxColumns, maxPixelsPerSlice, maxFileBytes };
}

async function decodeFrame(parsed: ParsedDicom, frame: number): Promise<SampleWords> {
  const { dataSet, syntax, header } = parsed;
  const { file, meta } = header;
  const pixel = dataSet.elements[TAG.pixelData];
  if (!pixel) throw new MedicalImageError(file, 'corrupt', 'no Pixel Data element (7FE0,0010)');
  const geometry = { rows: meta.rows, columns: meta.cols, bitsAllocated: meta.bitsAllocated };

  if (syntax.decodedBy === 'native') return nativeWords(dataSet, pixel, meta, syntax, frame, file);
  if (syntax.decodedBy === 'unsupported') {
    throw new MedicalImageError(
      file,
      'unsupported-syntax',
      `transfer syntax ${describeTransferSyntax(syntax)} is not supported (supported: implicit/explicit VR little endian, deflated, big endian, JPEG Lossless 1.2.840.10008.1.2.4.57/.70, RLE Lossless, JPEG 2000 when @cornerstonejs/codec-openjpeg is installed)`,
    );
  }
  if (!pixel.encapsulatedPixelData || !pixel.fragments || pixel.fragments.length === 0) {
    throw new MedicalImageError(file, 'corrupt', `transfer syntax ${describeTransferSyntax(syntax)} needs encapsulated pixel data, none found`);
  }
  const encoded = encapsulatedFrame(dataSet, pixel, meta.numberOfFrames, frame, syntax, file);
  try {
    switch (syntax.decodedBy) {
      case 'jpeg-lossless':
        return decodeJpegLossless(encoded, geometry);
      case 'rle':
        return decodeRle(encoded, geometry);
      case 'jpeg2000':
        return await decodeJpeg2000(encoded, geometry);
    }
  } catch (error) {
    if (error instanceof MedicalImageError) throw error;
    if (error instanceof Jpeg2000UnavailableError) {
      throw new MedicalImageError(
        file,
        'unsupported-syntax',
        `transfer syntax ${describeTransferSyntax(syntax)} is not supported here: ${error.message}`,
        { cause: error },
      );
    }
    throw new MedicalImageError(
      file,
      'corrupt',
      `cannot decode ${describeTransferSyntax(syntax)} pixel data: ${describeThrown(error)}`,
      { cause: error },
    );
  }
}

function encapsulatedFrame(
  dataSet: DataSet,
  pixel: Element,
  numberOfFrames: number,
  frame: number,
  syntax: TransferSyntaxInfo,
  file: string,
): Uint8Array {
  const fragments = pixel.fragments ?? [];
  for (const fragment of fragments) {
    if (fragment.position + fragment.length > dataSet.byteArray.length) {
      throw new MedicalImageError(file, 'truncated', 'truncated DICOM file: a pixel data fragment runs past the end');
    }
  }
  try {
    if (numberOfFrames === 1) {
      return dicomParser.readEncapsulatedPixelDataFromFragments(dataSet, pixel, 0, fragments.length);
    }
    const table = pixel.basicOffsetTable ?? [];
    if (table.length > 0) return dicomParser.readEncapsulatedImageFrame(dataSet, pixel, frame);
    if (fragments.length === numberOfFrames) {
      return dicomParser.readEncapsulatedPixelDataFromFragments(dataSet, pixel, frame, 1);
    }
    if (syntax.decodedBy === 'jpeg-lossless') {
      const built = dicomParser.createJPEGBasicOffsetTable(dataSet, pixel);
      return dicomParser.readEncapsulatedImageFrame(dataSet, pixel, frame, built);
    }
  } catch (thrown) {
    throw new MedicalImageError(file, 'corrupt', `cannot read encapsulated frame ${frame}: ${describeThrown(thrown)}`);
  }
  throw new MedicalImageError(file, 'corrupt', `cannot locate frame ${frame}: no Basic Offset Table`);
}

function nativeWords(
  dataSet: DataSet,
  pixel: Element,
  meta: DicomMeta,
  syntax: TransferSyntaxInfo,
  frame: number,
  file: string,
): SampleWords {
  const bytesPerSample = meta.bitsAllocated / 8;
  const count = meta.rows * meta.cols;
  const frameBytes = count * bytesPerSample;
  const start = pixel.dataOffset + frame * frameBytes;
  const available = Math.min(pixel.length, dataSet.byteArray.length - pixel.dataOffset);
  if ((frame + 1) * frameBytes > available) {
    throw new MedicalImageError(
      file,
      pixel.length >= (frame + 1) * frameBytes ? 'truncated' : 'corrupt',
      `Pixel Data has ${available} bytes, ${(frame + 1) * frameBytes} needed for ${meta.cols}x${meta.rows}x${bytesPerSample} bytes${frame > 0 ? ` up to frame ${frame}` : ''}`,
    );
  }
  const source = dataSet.byteArray;
  if (bytesPerSample === 1) return new Uint8Array(source.buffer, source.byteOffset + start, count);
  const words = new Uint16Array(count);
  const view = new DataView(source.buffer, source.byteOffset + start, frameBytes);
  const littleEndian = !syntax.bigEndian;
  for (let i = 0; i < count; i++) words[i] = view.getUint16(2 * i, littleEndian);
  return words;
}

/** Masks to Bits Stored, sign-extends when Pixel Representation is 1, then applies Rescale Slope/Intercept. */
function wordsToHu(words: SampleWords, meta: DicomMeta): Float32Array {
  const bits = meta.bitsStored;
  const mask = bits >= 32 ? 0xffffffff : 2 ** bits - 1;
  const signBit = 2 ** (bits - 1);
  const signed = meta.pixelRepresentation === 1;
  const { rescaleSlope: slope, rescaleIntercept: intercept } = meta;
  const hu = new Float32Array(words.length);
  for (let i = 0; i < words.length; i++) {
    let stored = (words[i] as number) & mask;
    if (signed && stored >= signBit) stored -= 2 * signBit;
    hu[i] = stored * slope + intercept;
  }
  return hu;
}
