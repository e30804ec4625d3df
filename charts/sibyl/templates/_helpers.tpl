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

{{/* Router ServiceAccounts the operator accepts, comma-separated. */}}
{{- define "sibyl.allowedRouters" -}}
{{- $list := list -}}
{{- if .Values.router.enabled -}}
{{- $list = append $list (printf "%s/%s" .Release.Namespace .Values.router.serviceAccount.name) -}}
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
