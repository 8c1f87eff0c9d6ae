/** Turns TFLite constant tensors into float32: real = scale * (q - zero_point), per tensor or per channel. */
import { TensorType, type TfliteTensor } from './schema.ts';

export class DequantizeError extends Error {
  override name = 'DequantizeError';
}

function readRaw(type: TensorType, bytes: Uint8Array, count: number, tensorName: string): Float64Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const width = { [TensorType.FLOAT32]: 4, [TensorType.UINT8]: 1, [TensorType.INT8]: 1, [TensorType.INT32]: 4, [TensorType.INT16]: 2 }[
    type as number
  ];
  if (width === undefined) throw new DequantizeError(`tensor '${tensorName}': unsupported type ${TensorType[type] ?? type}`);
  if (bytes.byteLength !== count * width) {
    throw new DequantizeError(`tensor '${tensorName}': ${bytes.byteLength} bytes of data, shape needs ${count * width}`);
  }
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    switch (type) {
      case TensorType.FLOAT32:
        out[i] = view.getFloat32(4 * i, true);
        break;
      case TensorType.UINT8:
        out[i] = view.getUint8(i);
        break;
      case TensorType.INT8:
        out[i] = view.getInt8(i);
        break;
      case TensorType.INT16:
        out[i] = view.getInt16(2 * i, true);
        break;
      default:
        out[i] = view.getInt32(4 * i, true);
    }
  }
  return out;
}

/** The float32 values of a constant tensor; quantized integer tensors are dequantized. */
export function dequantizeTensor(tensor: TfliteTensor, data: Uint8Array): Float32Array {
  const count = tensor.shape.reduce((a, b) => a * b, 1);
  const raw = readRaw(tensor.type, data, count, tensor.name);
  const q = tensor.quantization;
  if (tensor.type === TensorType.FLOAT32 || !q) {
    if (tensor.type !== TensorType.FLOAT32) {
      throw new DequantizeError(`tensor '${tensor.name}': integer weights without quantization parameters`);
    }
    return Float32Array.from(raw);
  }
  const out = new Float32Array(count);
  if (q.scale.length === 1) {
    const scale = q.scale[0]!;
    const zeroPoint = q.zeroPoint[0] ?? 0;
    for (let i = 0; i < count; i++) out[i] = scale * (raw[i]! - zeroPoint);
    return out;
  }
  const axis = q.quantizedDimension;
  const channels = tensor.shape[axis];
  if (channels !== q.scale.length) {
    throw new DequantizeError(
      `tensor '${tensor.name}': ${q.scale.length} scales for dimension ${axis} of size ${channels ?? 'none'}`,
    );
  }
  // Elements of one channel repeat every `inner` values, channels cycle with period inner * channels.
  const inner = tensor.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  for (let i = 0; i < count; i++) {
    const c = Math.floor(i / inner) % channels;
    out[i] = q.scale[c]! * (raw[i]! - (q.zeroPoint[c] ?? q.zeroPoint[0] ?? 0));
  }
  return out;
}
