import * as grpc from '@grpc/grpc-js';
import { demoClientConstructor } from '../backend/proto.js';

/** A grpc-js client of the demo service with the one method the benchmarks call. */
export type EchoClient = grpc.Client & {
  echo(
    req: object,
    md: grpc.Metadata,
    opts: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null) => void,
  ): grpc.ClientUnaryCall;
};

/** A client of `address`, once its channel is ready (within 10 s). */
export async function echoClient(address: string): Promise<EchoClient> {
  const Client = demoClientConstructor();
  const c = new Client(address, grpc.credentials.createInsecure()) as unknown as EchoClient;
  await new Promise<void>((resolve, reject) =>
    c.waitForReady(Date.now() + 10_000, (e) => (e ? reject(e) : resolve())),
  );
  return c;
}
