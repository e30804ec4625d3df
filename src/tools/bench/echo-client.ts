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

/** A Demo client on `target` (host:port, or xds:///NAME with grpc-js-xds registered), plaintext. */
export function echoClient(target: string, options: grpc.ChannelOptions = {}): EchoClient {
  const Client = demoClientConstructor();
  return new Client(target, grpc.credentials.createInsecure(), options) as unknown as EchoClient;
}

/** Resolves once `client`'s channel is ready; rejects after `timeoutMs`. */
export function ready(client: grpc.Client, timeoutMs = 10_000): Promise<void> {
  return new Promise<void>((resolve, reject) =>
    client.waitForReady(Date.now() + timeoutMs, (e) => (e ? reject(e) : resolve())),
  );
}

/** A client of `address`, once its channel is ready (within 10 s). */
export async function connectedEchoClient(address: string): Promise<EchoClient> {
  const c = echoClient(address);
  await ready(c);
  return c;
}
