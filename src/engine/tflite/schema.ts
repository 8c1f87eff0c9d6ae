/**
 * A hand-written reader for the parts of the TFLite flatbuffer schema (tensorflow/lite/schema/schema.fbs)
 * that the importer needs. Field numbers follow the schema; a union occupies two slots (type, value).
 * The file is decoded eagerly into plain objects: MobileNet-sized models have a few hundred tables.
 */
import { ByteBuffer } from 'flatbuffers';

export enum TensorType {
  FLOAT32 = 0,
  FLOAT16 = 1,
  INT32 = 2,
  UINT8 = 3,
  INT64 = 4,
  STRING = 5,
  BOOL = 6,
  INT16 = 7,
  COMPLEX64 = 8,
  INT8 = 9,
  FLOAT64 = 10,
}

/** BuiltinOperator codes, in schema order; the index is the code. Used for readable error messages. */
export const BUILTIN_OPERATOR_NAMES: readonly string[] = [
  'ADD', 'AVERAGE_POOL_2D', 'CONCATENATION', 'CONV_2D', 'DEPTHWISE_CONV_2D', 'DEPTH_TO_SPACE', 'DEQUANTIZE',
  'EMBEDDING_LOOKUP', 'FLOOR', 'FULLY_CONNECTED', 'HASHTABLE_LOOKUP', 'L2_NORMALIZATION', 'L2_POOL_2D',
  'LOCAL_RESPONSE_NORMALIZATION', 'LOGISTIC', 'LSH_PROJECTION', 'LSTM', 'MAX_POOL_2D', 'MUL', 'RELU',
  'RELU_N1_TO_1', 'RELU6', 'RESHAPE', 'RESIZE_BILINEAR', 'RNN', 'SOFTMAX', 'SPACE_TO_DEPTH', 'SVDF', 'TANH',
  'CONCAT_EMBEDDINGS', 'SKIP_GRAM', 'CALL', 'CUSTOM', 'EMBEDDING_LOOKUP_SPARSE', 'PAD',
  'UNIDIRECTIONAL_SEQUENCE_RNN', 'GATHER', 'BATCH_TO_SPACE_ND', 'SPACE_TO_BATCH_ND', 'TRANSPOSE', 'MEAN', 'SUB',
  'DIV', 'SQUEEZE', 'UNIDIRECTIONAL_SEQUENCE_LSTM', 'STRIDED_SLICE', 'BIDIRECTIONAL_SEQUENCE_RNN', 'EXP',
  'TOPK_V2', 'SPLIT', 'LOG_SOFTMAX', 'DELEGATE', 'BIDIRECTIONAL_SEQUENCE_LSTM', 'CAST', 'PRELU', 'MAXIMUM',
  'ARG_MAX', 'MINIMUM', 'LESS', 'NEG', 'PADV2', 'GREATER', 'GREATER_EQUAL', 'LESS_EQUAL', 'SELECT', 'SLICE', 'SIN',
  'TRANSPOSE_CONV', 'SPARSE_TO_DENSE', 'TILE', 'EXPAND_DIMS', 'EQUAL', 'NOT_EQUAL', 'LOG', 'SUM', 'SQRT', 'RSQRT',
  'SHAPE', 'POW', 'ARG_MIN', 'FAKE_QUANT', 'REDUCE_PROD', 'REDUCE_MAX', 'PACK', 'LOGICAL_OR', 'ONE_HOT',
  'LOGICAL_AND', 'LOGICAL_NOT', 'UNPACK', 'REDUCE_MIN', 'FLOOR_DIV', 'REDUCE_ANY', 'SQUARE', 'ZEROS_LIKE', 'FILL',
  'FLOOR_MOD', 'RANGE', 'RESIZE_NEAREST_NEIGHBOR', 'LEAKY_RELU', 'SQUARED_DIFFERENCE', 'MIRROR_PAD', 'ABS',
  'SPLIT_V', 'UNIQUE', 'CEIL', 'REVERSE_V2', 'ADD_N', 'GATHER_ND', 'COS', 'WHERE', 'RANK', 'ELU',
  'REVERSE_SEQUENCE', 'MATRIX_DIAG', 'QUANTIZE', 'MATRIX_SET_DIAG', 'ROUND', 'HARD_SWISH', 'IF', 'WHILE',
  'NON_MAX_SUPPRESSION_V4', 'NON_MAX_SUPPRESSION_V5', 'SCATTER_ND', 'SELECT_V2', 'DENSIFY', 'SEGMENT_SUM',
  'BATCH_MATMUL',
];

export function builtinOperatorName(code: number): string {
  return BUILTIN_OPERATOR_NAMES[code] ?? `BUILTIN_${code}`;
}

export interface QuantizationParameters {
  scale: Float32Array;
  zeroPoint: number[];
  quantizedDimension: number;
}

export interface TfliteTensor {
  index: number;
  name: string;
  shape: number[];
  type: TensorType;
  buffer: number;
  quantization: QuantizationParameters | undefined;
}

export interface TfliteOperator {
  /** Resolved BuiltinOperator code (the larger of the deprecated byte and the int32 field). */
  builtinCode: number;
  customCode: string | undefined;
  inputs: number[];
  outputs: number[];
  /** BuiltinOptions union type tag and the table position of its value, read lazily by the option readers. */
  optionsType: number;
  options: Table | undefined;
}

export interface TfliteSubGraph {
  name: string;
  tensors: TfliteTensor[];
  inputs: number[];
  outputs: number[];
  operators: TfliteOperator[];
}

export interface TfliteModel {
  version: number;
  description: string;
  subgraphs: TfliteSubGraph[];
  /** Buffer contents as views into the file (empty when the buffer holds no data). */
  buffers: Uint8Array[];
}

export class TfliteFormatError extends Error {
  override name = 'TfliteFormatError';
}

/** A position of a table inside the byte buffer, with typed field accessors by field number. */
export class Table {
  constructor(
    readonly bb: ByteBuffer,
    readonly pos: number,
  ) {}

  private fieldOffset(field: number): number {
    return this.bb.__offset(this.pos, 4 + 2 * field);
  }

  has(field: number): boolean {
    return this.fieldOffset(field) !== 0;
  }

  int8(field: number, fallback = 0): number {
    const o = this.fieldOffset(field);
    return o ? this.bb.readInt8(this.pos + o) : fallback;
  }

  uint8(field: number, fallback = 0): number {
    const o = this.fieldOffset(field);
    return o ? this.bb.readUint8(this.pos + o) : fallback;
  }

  int32(field: number, fallback = 0): number {
    const o = this.fieldOffset(field);
    return o ? this.bb.readInt32(this.pos + o) : fallback;
  }

  uint32(field: number, fallback = 0): number {
    const o = this.fieldOffset(field);
    return o ? this.bb.readUint32(this.pos + o) : fallback;
  }

  float32(field: number, fallback = 0): number {
    const o = this.fieldOffset(field);
    return o ? this.bb.readFloat32(this.pos + o) : fallback;
  }

  bool(field: number, fallback = false): boolean {
    const o = this.fieldOffset(field);
    return o ? this.bb.readInt8(this.pos + o) !== 0 : fallback;
  }

  string(field: number): string | undefined {
    const o = this.fieldOffset(field);
    return o ? (this.bb.__string(this.pos + o) as string) : undefined;
  }

  table(field: number): Table | undefined {
    const o = this.fieldOffset(field);
    return o ? new Table(this.bb, this.bb.__indirect(this.pos + o)) : undefined;
  }

  /** Start (byte position) and length of a vector field; length 0 when absent. */
  vector(field: number): { start: number; length: number } {
    const o = this.fieldOffset(field);
    if (!o) return { start: 0, length: 0 };
    return { start: this.bb.__vector(this.pos + o), length: this.bb.__vector_len(this.pos + o) };
  }

  int32Vector(field: number): number[] {
    const { start, length } = this.vector(field);
    return Array.from({ length }, (_, i) => this.bb.readInt32(start + 4 * i));
  }

  int64Vector(field: number): number[] {
    const { start, length } = this.vector(field);
    return Array.from({ length }, (_, i) => Number(this.bb.readInt64(start + 8 * i)));
  }

  float32Vector(field: number): Float32Array {
    const { start, length } = this.vector(field);
    return Float32Array.from({ length }, (_, i) => this.bb.readFloat32(start + 4 * i));
  }

  bytesVector(field: number): Uint8Array {
    const { start, length } = this.vector(field);
    return this.bb.bytes().subarray(start, start + length);
  }

  tableVector(field: number): Table[] {
    const { start, length } = this.vector(field);
    return Array.from({ length }, (_, i) => new Table(this.bb, this.bb.__indirect(start + 4 * i)));
  }
}

function readQuantization(table: Table | undefined): QuantizationParameters | undefined {
  if (!table) return undefined;
  const scale = table.float32Vector(2);
  if (scale.length === 0) return undefined;
  return { scale, zeroPoint: table.int64Vector(3), quantizedDimension: table.int32(6) };
}

function readTensor(table: Table, index: number): TfliteTensor {
  return {
    index,
    shape: table.int32Vector(0),
    type: table.int8(1) as TensorType,
    buffer: table.uint32(2),
    name: table.string(3) ?? `tensor_${index}`,
    quantization: readQuantization(table.table(4)),
  };
}

/** Parses a `.tflite` file. Only the fields the importer uses are read. */
export function readTfliteModel(bytes: Uint8Array): TfliteModel {
  if (bytes.length < 8) throw new TfliteFormatError('not a TFLite file: shorter than 8 bytes');
  const identifier = String.fromCharCode(...bytes.subarray(4, 8));
  if (identifier !== 'TFL3') throw new TfliteFormatError(`not a TFLite file: identifier '${identifier}', expected 'TFL3'`);
  const bb = new ByteBuffer(bytes);
  const model = new Table(bb, bb.readInt32(bb.position()) + bb.position());
  const operatorCodes = model.tableVector(1).map((code) => ({
    builtinCode: Math.max(code.int8(0), code.int32(3)),
    customCode: code.string(1),
  }));
  const subgraphs = model.tableVector(2).map((sg): TfliteSubGraph => ({
    name: sg.string(4) ?? '',
    tensors: sg.tableVector(0).map(readTensor),
    inputs: sg.int32Vector(1),
    outputs: sg.int32Vector(2),
    operators: sg.tableVector(3).map((op): TfliteOperator => {
      const opcodeIndex = op.uint32(0);
      const code = operatorCodes[opcodeIndex];
      if (!code) throw new TfliteFormatError(`operator refers to missing operator code ${opcodeIndex}`);
      return {
        builtinCode: code.builtinCode,
        customCode: code.customCode,
        inputs: op.int32Vector(1),
        outputs: op.int32Vector(2),
        optionsType: op.uint8(3),
        options: op.table(4),
      };
    }),
  }));
  const buffers = model.tableVector(4).map((buffer) => {
    if (buffer.has(1) && buffer.int32(1) !== 0) {
      throw new TfliteFormatError('buffers stored outside the flatbuffer (files over 2 GB) are not supported');
    }
    return buffer.bytesVector(0);
  });
  return { version: model.uint32(0), description: model.string(3) ?? '', subgraphs, buffers };
}
