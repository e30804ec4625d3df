{{/* Common labels. */}}
{{- define "sibyl.labels" -}}
app.kubernetes.io/name: sibyl
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* Selector labels of one component: include with (dict "ctx" $ "component" "operator"). */}}
{{- define "sibyl.selector" -}}
app.kubernetes.io/name: sibyl
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "sibyl.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* The Service routers dial for the control API (selects the leader: only it is ready). */}}
{{- define "sibyl.controlService" -}}
{{ .Release.Name }}-operator
{{- end }}

{{- define "sibyl.controlHost" -}}
{{ include "sibyl.controlService" . }}.{{ .Release.Namespace }}.svc
{{- end }}

{{/* The Secret holding tls.crt, tls.key and ca.crt for the control API. */}}
{{- define "sibyl.tlsSecret" -}}
{{ .Values.controlTLS.existingSecret | default (printf "%s-control-tls" .Release.Name) }}
{{- end }}

{{/*
Whether the chart runs sibyl routers (dataPlane: sibyl, or beside Envoy with router.withEnvoy as the
path for CacheTiers' cacheable methods) and Envoy (dataPlane: envoy).
*/}}
{{- define "sibyl.routers" -}}
{{- if and (eq .Values.dataPlane "sibyl") .Values.router.enabled }}true{{ end -}}
{{- if and (eq .Values.dataPlane "envoy") .Values.router.withEnvoy }}true{{ end -}}
{{- end }}
{{- define "sibyl.cacheRouters" -}}
{{- if and (eq .Values.dataPlane "envoy") .Values.router.withEnvoy }}true{{ end -}}
{{- end }}
{{- define "sibyl.envoy" -}}
{{- if eq .Values.dataPlane "envoy" }}true{{ end -}}
{{- end }}

{{/* The Envoy fleet's name (node.cluster): its Envoys share one listener. */}}
{{- define "sibyl.envoyFleet" -}}
{{ .Values.envoy.fleet | default (printf "%s-envoy" .Release.Name) }}
{{- end }}

{{/* Where the chart's data planes mount the control CA and their ServiceAccount token. */}}
{{- define "sibyl.caFile" -}}/etc/sibyl/control-ca/ca.crt{{- end }}
{{- define "sibyl.tokenFile" -}}/var/run/secrets/sibyl/token/token{{- end }}

{{/* ServiceAccounts the operator accepts (routers, Envoys, proxyless clients), comma-separated. */}}
{{- define "sibyl.allowedRouters" -}}
{{- $list := list -}}
{{- if include "sibyl.routers" . -}}
{{- $list = append $list (printf "%s/%s" .Release.Namespace .Values.router.serviceAccount.name) -}}
{{- end -}}
{{- if include "sibyl.envoy" . -}}
{{- $list = append $list (printf "%s/%s" .Release.Namespace .Values.envoy.serviceAccount.name) -}}
{{- end -}}
{{- range .Values.operator.allowedRouters -}}
{{- $list = append $list . -}}
{{- end -}}
{{ join "," (uniq $list) }}
{{- end }}

{{/* Namespaces whose Secrets the operator may get, comma-separated (operator.secretAccess). */}}
{{- define "sibyl.secretNamespaces" -}}
{{- $default := .Values.operator.watchNamespace | default .Release.Namespace -}}
{{ join "," (.Values.operator.secretAccess.namespaces | default (list $default) | uniq) }}
{{- end }}
