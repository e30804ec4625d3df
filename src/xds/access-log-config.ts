import { packAny } from './proto.js';
import { duration, type Msg } from './routes.js';
import type { AccessLogTarget } from './types.js';

const ALS_CONFIG = 'envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig';
const FILE_METADATA = 'envoy.config.grpc_credential.v3.FileBasedMetadataConfig';
const FILE_METADATA_PLUGIN = 'envoy.grpc_credentials.file_based_metadata';

/** The log name Envoy streams under (StreamAccessLogsMessage.identifier.log_name). */
const ACCESS_LOG_NAME = 'sibyl.upstream';

/** How often Envoy flushes its buffered entries (its default is 1 s too; set so it is explicit). */
const FLUSH_MS = 1000;

/**
 * The router filter's upstream access log: one entry per upstream attempt (a retry or a hedge is an
 * entry of its own, on the endpoint it went to), where the connection manager's access log would have
 * one per downstream call, naming only the last attempt's endpoint. Streamed over gRPC ALS
 * (envoy.service.accesslog.v3.AccessLogService) with the Google gRPC client, as the bootstrap's ADS
 * is, so TLS and the token file apply the same way (Envoy's own client can send only metadata written
 * into the config). grpc-status is logged from the trailers, and from the headers for a
 * Trailers-Only response.
 */
export function upstreamAccessLog(t: AccessLogTarget): Msg {
  const google_grpc = {
    target_uri: t.server,
    stat_prefix: 'sibyl_als',
    ...(t.caFile ? { channel_credentials: { ssl_credentials: { root_certs: { filename: t.caFile } } } } : {}),
    ...(t.tokenFile
      ? {
          // The default credentials factory ignores plugin call credentials; this one applies them.
          credentials_factory_name: FILE_METADATA_PLUGIN,
          call_credentials: [
            {
              from_plugin: {
                name: FILE_METADATA_PLUGIN,
                typed_config: packAny(FILE_METADATA, {
                  secret_data: { filename: t.tokenFile },
                  header_key: 'authorization',
                  header_prefix: 'Bearer ',
                }),
              },
            },
          ],
        }
      : {}),
  };
  const config = {
    common_config: {
      log_name: ACCESS_LOG_NAME,
      grpc_service: { google_grpc },
      transport_api_version: 'V3',
      buffer_flush_interval: duration(FLUSH_MS),
    },
    additional_response_headers_to_log: ['grpc-status'],
    additional_response_trailers_to_log: ['grpc-status'],
  };
  return {
    upstream_log: [{ name: 'envoy.access_loggers.http_grpc', typed_config: packAny(ALS_CONFIG, config) }],
  };
}
