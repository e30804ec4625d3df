import { stringify } from 'yaml';
import { parseListenAddress } from '../grpc/address.js';
import { LISTEN_KEY, NAMESPACE_KEY } from './clients.js';

/** What `sibyl xds-bootstrap` is told; paths are as the data plane's process sees them. */
export interface BootstrapOptions {
  /** The operator's control API, host:port (ADS is served there). */
  server: string;
  /** Trust this CA (PEM file) for the server's certificate; absent with `insecure`: plaintext. */
  caFile?: string;
  insecure?: boolean;
  /** A ServiceAccount token file (a projected token), sent as `authorization: Bearer …`. */
  tokenFile?: string;
  nodeId: string;
  /** Envoy: node.cluster, the fleet its Envoys share a listener in. */
  fleet?: string;
  /** Envoy: the gRPC listener's address, and the admin interface's. */
  listen?: string;
  admin?: string;
  /** Envoy: route only this namespace's pools. */
  namespace?: string;
}

/** Node metadata keys sibyl reads back, so the operator can set up access logs with the same channel. */
export const TOKEN_FILE_KEY = 'sibyl.dev/token-file';
export const CA_FILE_KEY = 'sibyl.dev/ca-file';

/**
 * A proxyless gRPC client's bootstrap (GRPC_XDS_BOOTSTRAP names the file, GRPC_XDS_BOOTSTRAP_CONFIG
 * holds it inline). TLS is gRFC A65's "tls" channel credentials; the token is gRFC A97's
 * jwt_token_file call credentials, which grpc-go reads (again before the token expires) when
 * GRPC_EXPERIMENTAL_XDS_BOOTSTRAP_CALL_CREDS=true, and only over TLS. grpc-js-xds 1.14 knows
 * neither: it talks to the server in plaintext without a token, so it needs an operator started with
 * --xds-allow-unauthenticated.
 */
export function grpcBootstrap(o: BootstrapOptions): Record<string, unknown> {
  return {
    xds_servers: [
      {
        server_uri: o.server,
        channel_creds: o.caFile
          ? [{ type: 'tls', config: { ca_certificate_file: o.caFile } }]
          : [{ type: 'insecure' }],
        ...(o.tokenFile
          ? { call_creds: [{ type: 'jwt_token_file', config: { jwt_token_file: o.tokenFile } }] }
          : {}),
        server_features: ['xds_v3'],
      },
    ],
    node: { id: o.nodeId, cluster: o.fleet ?? 'proxyless', locality: { region: 'sibyl' } },
  };
}

/**
 * An Envoy bootstrap: ADS over the Google gRPC client to the operator, LDS and CDS from it (Envoy
 * subscribes to both as wildcards), an admin interface, and node metadata that tells sibyl where the
 * fleet's listener binds.
 *
 * The token goes with every ADS stream through Envoy's file_based_metadata call credentials, which read
 * the file when Envoy creates the channel (at start): a rotated projected token is picked up by the
 * next Envoy restart, so give it a lifetime longer than an Envoy's. Envoy's own gRPC client
 * (envoy_grpc) can send only metadata written into the bootstrap itself.
 */
export function envoyBootstrap(o: BootstrapOptions): Record<string, unknown> {
  const admin = parseListenAddress(o.admin ?? '127.0.0.1:9901', '--admin');
  const listen = o.listen ?? '0.0.0.0:8080';
  parseListenAddress(listen, '--listen');
  const ads = {
    google_grpc: {
      target_uri: o.server,
      stat_prefix: 'sibyl_ads',
      ...(o.caFile
        ? { channel_credentials: { ssl_credentials: { root_certs: { filename: o.caFile } } } }
        : {}),
      ...(o.tokenFile
        ? {
            // The default factory ignores plugin call credentials; this one applies them.
            credentials_factory_name: 'envoy.grpc_credentials.file_based_metadata',
            call_credentials: [
              {
                from_plugin: {
                  name: 'envoy.grpc_credentials.file_based_metadata',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.config.grpc_credential.v3.FileBasedMetadataConfig',
                    secret_data: { filename: o.tokenFile },
                    header_key: 'authorization',
                    header_prefix: 'Bearer ',
                  },
                },
              },
            ],
          }
        : {}),
    },
  };
  return {
    node: {
      id: o.nodeId,
      cluster: o.fleet ?? 'sibyl-envoy',
      metadata: {
        [LISTEN_KEY]: listen,
        ...(o.namespace ? { [NAMESPACE_KEY]: o.namespace } : {}),
        ...(o.tokenFile ? { [TOKEN_FILE_KEY]: o.tokenFile } : {}),
        ...(o.caFile ? { [CA_FILE_KEY]: o.caFile } : {}),
      },
    },
    admin: { address: { socket_address: { address: admin.host, port_value: admin.port } } },
    dynamic_resources: {
      ads_config: {
        api_type: 'GRPC',
        transport_api_version: 'V3',
        set_node_on_first_message_only: true,
        grpc_services: [ads],
      },
      lds_config: { ads: {}, resource_api_version: 'V3' },
      cds_config: { ads: {}, resource_api_version: 'V3' },
    },
  };
}

export function renderBootstrap(kind: 'grpc' | 'envoy', o: BootstrapOptions): string {
  return kind === 'grpc' ? `${JSON.stringify(grpcBootstrap(o), null, 2)}\n` : stringify(envoyBootstrap(o));
}
