import { decodeOrcaReport, decodeOrcaTrailer } from '../../../src/grpc/orca.js';

function double(field: number, v: number): Buffer {
  const b = Buffer.alloc(9);
  b[0] = (field << 3) | 1;
  b.writeDoubleLE(v, 1);
  return b;
}

describe('ORCA load report decoding', () => {
  it('reads the scalar utilisations and skips maps and varints', () => {
    const mapEntry = Buffer.from([0x2a, 0x05, 0x0a, 0x01, 0x78, 0x10, 0x01]); // field 5, len 5, opaque
    const rps = Buffer.from([0x18, 0xac, 0x02]); // field 3 varint 300
    const bytes = Buffer.concat([
      double(1, 0.42),
      rps,
      mapEntry,
      double(2, 0.1),
      double(9, 0.75),
      double(7, 3),
    ]);
    expect(decodeOrcaReport(bytes)).toEqual({
      cpuUtilization: 0.42,
      memUtilization: 0.1,
      applicationUtilization: 0.75,
      eps: 3,
    });
  });

  it('decodes the trailer as the grpc-js backend sends it', () => {
    // Captured from `sibyl backend --orca`: cpu, mem and application utilisation.
    const b64 = Buffer.from('095e1e75545fd67b3f119f343ae7bdde663f490000000000000000', 'hex').toString(
      'base64',
    );
    const r = decodeOrcaTrailer(b64);
    expect(r?.cpuUtilization).toBeCloseTo(0.00677, 4);
    expect(r?.memUtilization).toBeCloseTo(0.0028, 3);
    expect(r?.applicationUtilization).toBe(0);
  });

  it('refuses truncated or malformed input', () => {
    expect(decodeOrcaReport(double(1, 0.5).subarray(0, 5))).toBeUndefined();
    expect(decodeOrcaReport(Buffer.from([0x0b]))).toBeUndefined(); // wire type 3 (group)
    expect(decodeOrcaReport(Buffer.from([0x2a, 0x09, 0x01]))).toBeUndefined();
    expect(decodeOrcaTrailer(undefined)).toBeUndefined();
    expect(decodeOrcaReport(Buffer.alloc(0))).toEqual({});
  });
});

describe('encodeOrcaReport', () => {
  it('round-trips through the decoder the router uses', async () => {
    const { encodeOrcaReport, decodeOrcaReport } = await import('../../../src/grpc/orca.js');
    const r = { cpuUtilization: 0.42, memUtilization: 0.1, applicationUtilization: 0.75 };
    expect(decodeOrcaReport(encodeOrcaReport(r))).toEqual(r);
    expect(encodeOrcaReport({})).toHaveLength(0);
  });
});
