{{/*
Envoy's bootstrap: what `sibyl xds-bootstrap --kind envoy` prints for the chart's values (a chart
test checks they agree). ADS at the operator's control Service over TLS with the chart's CA and the
ServiceAccount token, LDS and CDS from it, node metadata that sends access logs to the same server, the admin interface on loopback, and a health listener
that serves only /ready and /stats/prometheus. node.id is replaced by each pod's name
(--service-node).
*/}}
{{- define "sibyl.envoyBootstrap" -}}
static_resources:
  listeners:
    - name: sibyl-envoy-health
      address:
        socket_address: {address: 0.0.0.0, port_value: {{ .Values.envoy.healthPort }}}
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: sibyl_health
                route_config:
                  virtual_hosts:
                    - name: health
                      domains: ["*"]
                      routes:
                        - match: {path: /ready}
                          route: {cluster: sibyl-envoy-admin}
                        - match: {path: /stats/prometheus}
                          route: {cluster: sibyl-envoy-admin}
                http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
    - name: sibyl-envoy-admin
      type: STATIC
      connect_timeout: 1s
      load_assignment:
        cluster_name: sibyl-envoy-admin
        endpoints:
          - lb_endpoints:
              - endpoint:
                  address:
                    socket_address: {address: 127.0.0.1, port_value: {{ .Values.envoy.adminPort }}}
node:
  id: sibyl-envoy
  cluster: {{ include "sibyl.envoyFleet" . | quote }}
  metadata:
    sibyl.dev/listen: "0.0.0.0:{{ .Values.envoy.port }}"
    {{- with .Values.envoy.watchNamespace }}
    sibyl.dev/namespace: {{ . | quote }}
    {{- end }}
    sibyl.dev/server: "{{ include "sibyl.controlHost" . }}:{{ .Values.operator.controlPort }}"
    sibyl.dev/token-file: {{ include "sibyl.tokenFile" . }}
    sibyl.dev/ca-file: {{ include "sibyl.caFile" . }}
admin:
  address:
    socket_address: {address: 127.0.0.1, port_value: {{ .Values.envoy.adminPort }}}
dynamic_resources:
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    set_node_on_first_message_only: true
    grpc_services:
      - google_grpc:
          target_uri: "{{ include "sibyl.controlHost" . }}:{{ .Values.operator.controlPort }}"
          stat_prefix: sibyl_ads
          channel_credentials:
            ssl_credentials:
              root_certs: {filename: {{ include "sibyl.caFile" . }}}
          credentials_factory_name: envoy.grpc_credentials.file_based_metadata
          call_credentials:
            - from_plugin:
                name: envoy.grpc_credentials.file_based_metadata
                typed_config:
                  "@type": type.googleapis.com/envoy.config.grpc_credential.v3.FileBasedMetadataConfig
                  secret_data: {filename: {{ include "sibyl.tokenFile" . }}}
                  header_key: authorization
                  header_prefix: "Bearer "
  lds_config: {ads: {}, resource_api_version: V3}
  cds_config: {ads: {}, resource_api_version: V3}
{{- end }}
