/** Transfer syntaxes this reader knows by name; `decodedBy` says how (or whether) their pixel data is decoded. */
export interface TransferSyntaxInfo {
  uid: string;
  name: string;
  decodedBy: 'native' | 'jpeg-lossless' | 'rle' | 'jpeg2000' | 'unsupported';
  bigEndian?: boolean;
  deflated?: boolean;
}

const KNOWN: readonly TransferSyntaxInfo[] = [
  { uid: '1.2.840.10008.1.2', name: 'Implicit VR Little Endian', decodedBy: 'native' },
  { uid: '1.2.840.10008.1.2.1', name: 'Explicit VR Little Endian', decodedBy: 'native' },
  { uid: '1.2.840.10008.1.2.1.99', name: 'Deflated Explicit VR Little Endian', decodedBy: 'native', deflated: true },
  { uid: '1.2.840.10008.1.2.2', name: 'Explicit VR Big Endian (retired)', decodedBy: 'native', bigEndian: true },
  { uid: '1.2.840.10008.1.2.4.57', name: 'JPEG Lossless, Non-Hierarchical (Process 14)', decodedBy: 'jpeg-lossless' },
  {
    uid: '1.2.840.10008.1.2.4.70',
    name: 'JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14, SV1)',
    decodedBy: 'jpeg-lossless',
  },
  { uid: '1.2.840.10008.1.2.5', name: 'RLE Lossless', decodedBy: 'rle' },
  { uid: '1.2.840.10008.1.2.4.90', name: 'JPEG 2000 Image Compression (Lossless Only)', decodedBy: 'jpeg2000' },
  { uid: '1.2.840.10008.1.2.4.91', name: 'JPEG 2000 Image Compression', decodedBy: 'jpeg2000' },
  { uid: '1.2.840.10008.1.2.4.50', name: 'JPEG Baseline (Process 1)', decodedBy: 'unsupported' },
  { uid: '1.2.840.10008.1.2.4.51', name: 'JPEG Extended (Process 2 & 4)', decodedBy: 'unsupported' },
  { uid: '1.2.840.10008.1.2.4.80', name: 'JPEG-LS Lossless', decodedBy: 'unsupported' },
  { uid: '1.2.840.10008.1.2.4.81', name: 'JPEG-LS Lossy (Near-Lossless)', decodedBy: 'unsupported' },
  { uid: '1.2.840.10008.1.2.4.201', name: 'High-Throughput JPEG 2000 Lossless Only', decodedBy: 'unsupported' },
  { uid: '1.2.840.10008.1.2.4.202', name: 'High-Throughput JPEG 2000 with RPCL Lossless Only', decodedBy: 'unsupported' },
  { uid: '1.2.840.10008.1.2.4.203', name: 'High-Throughput JPEG 2000', decodedBy: 'unsupported' },
  { uid: '1.2.840.10008.1.2.4.100', name: 'MPEG2 Main Profile @ Main Level', decodedBy: 'unsupported' },
  { uid: '1.2.840.10008.1.2.4.102', name: 'MPEG-4 AVC/H.264 High Profile', decodedBy: 'unsupported' },
];

const BY_UID = new Map(KNOWN.map((info) => [info.uid, info]));

export function transferSyntaxInfo(uid: string): TransferSyntaxInfo {
  return BY_UID.get(uid) ?? { uid, name: 'unknown transfer syntax', decodedBy: 'unsupported' };
}

export function describeTransferSyntax(info: TransferSyntaxInfo): string {
  return `${info.uid} (${info.name})`;
}
