import type * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { decodeOrcaReport, encodeOrcaReport, type OrcaReport } from './orca.js';

/**
 * Out-of-band ORCA (gRFC A51): xds.service.orca.v3.OpenRcaService/StreamCoreMetrics, a server stream
 * of OrcaLoadReports a backend sends every report_interval the client asks for. The messages are
 * coded by hand like the trailer's (orca.ts): the request has one field a client sets, the reports the
 * scalars sibyl reads.
 */
export const STREAM_CORE_METRICS = '/xds.service.orca.v3.OpenRcaService/StreamCoreMetrics';

/** OrcaLoadReportRequest { report_interval = 1 (google.protobuf.Duration { seconds = 1; nanos = 2 }) }. */
export function encodeOrcaRequest(intervalMs: number): Buffer {
  const ms = Math.max(0, Math.round(intervalMs));
  const d = protobuf.Writer.create()
    .uint32((1 << 3) | 0)
    .int64(Math.floor(ms / 1000))
    .uint32((2 << 3) | 0)
    .int32((ms % 1000) * 1_000_000)
    .finish();
  return Buffer.from(
    protobuf.Writer.create()
      .uint32((1 << 3) | 2)
      .bytes(d)
      .finish(),
  );
}

/** The interval a request asks for (undefined: none given); throws on a malformed message. */
export function decodeOrcaRequest(bytes: Uint8Array): { intervalMs?: number } {
  const r = protobuf.Reader.create(bytes);
  let intervalMs: number | undefined;
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 !== 1 || (tag & 7) !== 2) {
      r.skipType(tag & 7);
      continue;
    }
    const d = protobuf.Reader.create(r.bytes());
    let [seconds, nanos] = [0, 0];
    while (d.pos < d.len) {
      const t = d.uint32();
      if (t === 8) seconds = Number(d.int64());
      else if (t === 16) nanos = d.int32();
      else d.skipType(t & 7);
    }
    intervalMs = seconds * 1000 + nanos / 1e6;
  }
  return intervalMs !== undefined ? { intervalMs } : {};
}

/** The service for grpc-js: a backend adds it to its server; the operator calls it with the same codecs. */
export function orcaServiceDefinition(): grpc.ServiceDefinition {
  return {
    StreamCoreMetrics: {
      path: STREAM_CORE_METRICS,
      requestStream: false,
      responseStream: true,
      requestSerialize: (m: { intervalMs: number }) => encodeOrcaRequest(m.intervalMs),
      requestDeserialize: (b: Buffer) => decodeOrcaRequest(b),
      responseSerialize: (r: OrcaReport) => encodeOrcaReport(r),
      responseDeserialize: (b: Buffer) => {
        const r = decodeOrcaReport(b);
        if (!r) throw new Error('malformed OrcaLoadReport');
        return r;
      },
    },
  };
}
