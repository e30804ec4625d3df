import type * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import type { Logger } from 'pino';
import { errorMessage } from '../../util/errors.js';
import { demoPackageDefinition } from './proto.js';

/** gRPC server reflection (v1 and v1alpha) for the Demo service, so grpcurl and ghz need no .proto file. */
export function addReflection(server: grpc.Server, log: Logger): void {
  try {
    const pkg = demoPackageDefinition() as ConstructorParameters<typeof ReflectionService>[0];
    new ReflectionService(pkg).addToServer(server);
  } catch (e) {
    log.warn({ err: errorMessage(e) }, 'server reflection unavailable');
  }
}
