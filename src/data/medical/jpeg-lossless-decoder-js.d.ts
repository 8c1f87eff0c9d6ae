// The package ships no type declarations (its "types" path is missing); this covers the part we use.
declare module 'jpeg-lossless-decoder-js' {
  export class Decoder {
    constructor(buffer?: ArrayBufferLike | null, numBytes?: number);
    xDim: number;
    yDim: number;
    numComp: number;
    /** Returns one sample per pixel: Uint8Array for numBytes 1, Uint16Array for numBytes 2. */
    decode(buffer: ArrayBufferLike, offset?: number, length?: number, numBytes?: number): Uint8Array | Uint16Array;
  }
}
