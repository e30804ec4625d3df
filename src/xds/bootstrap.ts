import { stringify } from 'yaml';
import { parseListenAddress } from '../grpc/address.js';
import { NODE_KEYS } from './types.js';

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
  /**
   * Envoy: a listener (host:port) serving only the admin interface's /ready and /stats/prometheus, for
   * kubelet probes and Prometheus, so the admin interface itself stays on loopback.
   */
  health?: string;
}

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
    ...(o.health ? { static_resources: healthResources(o.health, admin) } : {}),
    node: {
      id: o.nodeId,
      cluster: o.fleet ?? 'sibyl-envoy',
      metadata: {
        // Read back by the operator: where the listener binds, and how to reach the operator again
        // for access logs (the same server, CA and token as ADS).
        [NODE_KEYS.listen]: listen,
        [NODE_KEYS.server]: o.server,
        ...(o.namespace ? { [NODE_KEYS.namespace]: o.namespace } : {}),
        ...(o.tokenFile ? { [NODE_KEYS.tokenFile]: o.tokenFile } : {}),
        ...(o.caFile ? { [NODE_KEYS.caFile]: o.caFile } : {}),
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

const HEALTH_PATHS = ['/ready', '/stats/prometheus'];
const ADMIN_CLUSTER = 'sibyl-envoy-admin';

/**
 * The health listener and the admin cluster behind it: a plain HTTP/1.1 listener whose only routes
 * are HEALTH_PATHS, proxied to the admin interface on loopback (the pattern Contour uses for its
 * Envoys); any other path is a 404, so nothing of the admin API (/quitquitquit, /runtime_modify, …)
 * is reachable from outside the pod.
 */
function healthResources(health: string, admin: { host: string; port: number }): Record<string, unknown> {
  const at = parseListenAddress(health, '--health');
  const socket = (a: { host: string; port: number }) => ({
    socket_address: { address: a.host, port_value: a.port },
  });
  return {
    listeners: [
      {
        name: 'sibyl-envoy-health',
        address: socket(at),
        filter_chains: [
          {
            filters: [
              {
                name: 'envoy.filters.network.http_connection_manager',
                typed_config: {
                  '@type':
                    'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                  stat_prefix: 'sibyl_health',
                  route_config: {
                    virtual_hosts: [
                      {
                        name: 'health',
                        domains: ['*'],
                        routes: HEALTH_PATHS.map((path) => ({
                          match: { path },
                          route: { cluster: ADMIN_CLUSTER },
                        })),
                      },
                    ],
                  },
                  http_filters: [
                    {
                      name: 'envoy.filters.http.router',
                      typed_config: {
                        '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
                      },
                    },
                  ],
                },
              },
            ],
          },
        ],
      },
    ],
    clusters: [
      {
        name: ADMIN_CLUSTER,
        type: 'STATIC',
        connect_timeout: '1s',
        load_assignment: {
          cluster_name: ADMIN_CLUSTER,
          endpoints: [{ lb_endpoints: [{ endpoint: { address: socket(admin) } }] }],
        },
      },
    ],
  };
}

export function renderBootstrap(kind: 'grpc' | 'envoy', o: BootstrapOptions): string {
  return kind === 'grpc' ? `${JSON.stringify(grpcBootstrap(o), null, 2)}\n` : stringify(envoyBootstrap(o));
}
