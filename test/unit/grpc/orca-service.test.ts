import protobuf from 'protobufjs';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { decodeOrcaRequest, encodeOrcaRequest } from '../../../src/grpc/orca-service.js';

/** The request as grpc-js's own copy of xds/service/orca/v3/orca.proto encodes it. */
function protoRequest(): protobuf.Type {
  const require = createRequire(import.meta.url);
  const dir = join(dirname(require.resolve('@grpc/grpc-js/package.json')), 'proto');
  // protobufjs ships google/protobuf/descriptor.proto, which validate.proto imports
  const includes = [
    join(dir, 'xds'),
    join(dir, 'protoc-gen-validate'),
    dirname(require.resolve('protobufjs/package.json')),
  ];
  const root = new protobuf.Root();
  root.resolvePath = (_o, target) =>
    includes.map((d) => join(d, target)).find((f) => existsSync(f)) ?? target;
  root.loadSync('xds/service/orca/v3/orca.proto', { keepCase: true });
  return root.lookupType('xds.service.orca.v3.OrcaLoadReportRequest');
}

describe('OrcaLoadReportRequest', () => {
  it('encodes report_interval as the proto does, and reads it back', () => {
    const T = protoRequest();
    const mine = encodeOrcaRequest(2500);
    expect(T.toObject(T.decode(mine), { longs: Number })).toEqual({
      report_interval: { seconds: 2, nanos: 5e8 },
    });
    const theirs = T.encode(
      T.fromObject({ report_interval: { seconds: 1, nanos: 250_000_000 }, request_cost_names: ['a', 'b'] }),
    ).finish();
    expect(decodeOrcaRequest(theirs)).toEqual({ intervalMs: 1250 });
    expect(decodeOrcaRequest(new Uint8Array())).toEqual({});
    expect(() => decodeOrcaRequest(Buffer.from([0x0a, 0x05, 0x08]))).toThrow();
  });
});
