/**
 * Preprocessing steps, each a small pure unit in the style of MONAI transforms: an image in, an image (or a mask)
 * out; random steps take an `Rng`. Defaults live in the config's `preprocess` section.
 */
export { toGrayscale, luminance, greyToRgb, LUMA_WEIGHTS } from './grayscale.ts';
export { normalizeIntensity, stretchTable, STRETCH_PERCENTILES } from './intensity.ts';
export { jpegReencode, drawJpegQuality, encodeJpeg, DEFAULT_JPEG_QUALITY } from './jpeg.ts';
export type { JpegReencodeOptions } from './jpeg.ts';
export { lungMask, lungMaskHu, lungCrop, segmentLungs, expandBox, cropAndResize, maskBox, wholeImage, LUNG_MASK_DEFAULTS, LUNG_HU } from './lungs.ts';
export type { Box, LungMask, LungMaskOptions, LungCrop } from './lungs.ts';
export { otsuThreshold, connectedComponents, fillHoles, dilate, erode, close } from './morphology.ts';
export type { Component } from './morphology.ts';
