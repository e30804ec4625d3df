/**
 * Decoding of ORCA load reports (xds.data.orca.v3.OrcaLoadReport, as grpc-js and grpc-go servers send
 * them in the `endpoint-load-metrics-bin` trailer). Only the scalar fields the balancers use are read;
 * everything else is skipped by wire type, so a newer server's extra fields do no harm. Written by hand
 * (a protobuf reader for four wire types) to keep the per-call cost to a few hundred nanoseconds.
 */
export const ORCA_TRAILER = 'endpoint-load-metrics-bin';

export interface OrcaReport {
  cpuUtilization?: number; // field 1
  memUtilization?: number; // field 2
  rpsFractional?: number; // field 6
  eps?: number; // field 7
  applicationUtilization?: number; // field 9
}

const DOUBLE_FIELDS: Record<number, keyof OrcaReport> = {
  1: 'cpuUtilization',
  2: 'memUtilization',
  6: 'rpsFractional',
  7: 'eps',
  9: 'applicationUtilization',
};

/** The report in `bytes`, or undefined when they are not a well-formed message. */
export function decodeOrcaReport(bytes: Uint8Array): OrcaReport | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: OrcaReport = {};
  let i = 0;
  const varint = (): number | undefined => {
    let result = 0;
    for (let shift = 0; shift < 64; shift += 7) {
      if (i >= bytes.length) return undefined;
      const b = bytes[i++] as number;
      result += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return result;
    }
    return undefined;
  };
  while (i < bytes.length) {
    const key = varint();
    if (key === undefined) return undefined;
    const field = Math.floor(key / 8);
    switch (key % 8) {
      case 0:
        if (varint() === undefined) return undefined;
        break;
      case 1: {
        if (i + 8 > bytes.length) return undefined;
        const name = DOUBLE_FIELDS[field];
        if (name) out[name] = view.getFloat64(i, true);
        i += 8;
        break;
      }
      case 2: {
        const len = varint();
        if (len === undefined || i + len > bytes.length) return undefined;
        i += len;
        break;
      }
      case 5:
        if (i + 4 > bytes.length) return undefined;
        i += 4;
        break;
      default:
        return undefined;
    }
  }
  return out;
}

/** The trailer's value as Node's HTTP/2 layer gives it: base64 text (padding optional), maybe repeated. */
export function decodeOrcaTrailer(value: string | string[] | undefined): OrcaReport | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return undefined;
  return decodeOrcaReport(Buffer.from(text, 'base64'));
}

/**
 * The report as OrcaLoadReport bytes (the double fields only, each as field number + wire type 1).
 * Backends write the trailer themselves: grpc-js 1.14's per-call metric recorder reloads the ORCA
 * proto files on every call (its cache variable is a `const null`), which costs tens of milliseconds.
 */
export function encodeOrcaReport(r: OrcaReport): Buffer {
  const fields = Object.entries(DOUBLE_FIELDS).filter(([, name]) => r[name] !== undefined);
  const out = Buffer.alloc(fields.length * 9);
  let i = 0;
  for (const [field, name] of fields) {
    out[i++] = (Number(field) << 3) | 1;
    out.writeDoubleLE(r[name] as number, i);
    i += 8;
  }
  return out;
}
