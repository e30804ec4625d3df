import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** proto/ at the package root; the same relative path from src/backend and dist/backend. */
export const PROTO_ROOT = fileURLToPath(new URL('../../proto', import.meta.url));
export const DEMO_PROTO = 'sibyl/demo/v1/demo.proto';
export const DEMO_SERVICE = 'sibyl.demo.v1.Demo';

/**
 * Loader options, fixed for every user of the demo service: camelCase fields (keepCase false),
 * uint64 as JS numbers (served_micros and total_bytes stay far below 2^53), bytes as Buffer, and
 * defaults filled in so decoded messages have every field (see messages.ts).
 */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

let cached: protoLoader.PackageDefinition | undefined;

export function demoPackageDefinition(): protoLoader.PackageDefinition {
  cached ??= protoLoader.loadSync(DEMO_PROTO, LOADER_OPTIONS);
  return cached;
}

/** The Demo service definition, for Server.addService. */
export function demoServiceDefinition(): grpc.ServiceDefinition {
  return demoPackageDefinition()[DEMO_SERVICE] as grpc.ServiceDefinition;
}

/** A client constructor for the Demo service (tests, the demo, the benchmarks). */
export function demoClientConstructor(): grpc.ServiceClientConstructor {
  const pkg = grpc.loadPackageDefinition(demoPackageDefinition());
  const ns = ((pkg.sibyl as grpc.GrpcObject).demo as grpc.GrpcObject).v1 as grpc.GrpcObject;
  return ns.Demo as grpc.ServiceClientConstructor;
}
