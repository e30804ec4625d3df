import * as grpc from '@grpc/grpc-js';
import { adsServiceDefinition, type DiscoveryRequest, type DiscoveryResponse } from '../../src/xds/proto.js';
import { waitFor } from './wait.js';

const Client = grpc.makeGenericClientConstructor(adsServiceDefinition(), 'ADS');

/** A raw ADS stream from a real grpc-js client: it sends requests as an xDS client would and keeps what it gets. */
export class AdsStream {
  readonly got: DiscoveryResponse[] = [];
  error?: grpc.ServiceError;
  readonly call: grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;

  constructor(address: string, md = new grpc.Metadata(), creds = grpc.credentials.createInsecure()) {
    const c = new Client(address, creds) as unknown as Record<
      string,
      (md: grpc.Metadata) => grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>
    >;
    this.call = (c.StreamAggregatedResources as (md: grpc.Metadata) => typeof this.call)(md);
    this.call.on('data', (r: DiscoveryResponse) => this.got.push(r));
    this.call.on('error', (e: grpc.ServiceError) => (this.error = e));
  }

  send(type: string, names: string[], ack?: DiscoveryResponse, error?: string, node?: object): void {
    this.call.write({
      type_url: type,
      resource_names: names,
      version_info: error ? '' : (ack?.version_info ?? ''),
      response_nonce: ack?.nonce ?? '',
      ...(node ? { node } : {}),
      ...(error ? { error_detail: { code: 3, message: error } } : {}),
    } as DiscoveryRequest);
  }

  async next(type: string, count = 1): Promise<DiscoveryResponse> {
    return waitFor(() => this.got.filter((r) => r.type_url === type)[count - 1], {
      timeoutMs: 5000,
      what: `response ${count} for ${type}`,
    });
  }

  count(type: string): number {
    return this.got.filter((r) => r.type_url === type).length;
  }
}
