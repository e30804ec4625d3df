import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { LOADER_OPTIONS } from '../grpc/proto.js';

const CONTROL_PROTO = 'sibyl/v1/control.proto';
const CONTROL_SERVICE = 'sibyl.v1.RoutingControl';

let cached: protoLoader.PackageDefinition | undefined;

/** The control protocol, loaded with the same options as every sibyl proto (camelCase, longs as numbers). */
function controlPackageDefinition(): protoLoader.PackageDefinition {
  cached ??= protoLoader.loadSync(CONTROL_PROTO, LOADER_OPTIONS);
  return cached;
}

export function controlServiceDefinition(): grpc.ServiceDefinition {
  return controlPackageDefinition()[CONTROL_SERVICE] as grpc.ServiceDefinition;
}

export function controlClientConstructor(): grpc.ServiceClientConstructor {
  const pkg = grpc.loadPackageDefinition(controlPackageDefinition());
  const v1 = (pkg.sibyl as grpc.GrpcObject).v1 as grpc.GrpcObject;
  return v1.RoutingControl as grpc.ServiceClientConstructor;
}
