import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { LOADER_OPTIONS } from '../../grpc/proto.js';

const DEMO_PROTO = 'sibyl/demo/v1/demo.proto';
const DEMO_SERVICE = 'sibyl.demo.v1.Demo';

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
