{{- /* Names and labels shared by the controller's objects. */ -}}
{{- define "meshfork.name" -}}meshfork-controller{{- end }}

{{- define "meshfork.labels" -}}
app.kubernetes.io/name: meshfork
app.kubernetes.io/component: controller
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
{{- end }}

{{- define "meshfork.selectorLabels" -}}
app.kubernetes.io/name: meshfork
app.kubernetes.io/component: controller
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end }}

{{- define "meshfork.serviceAccountName" -}}{{ .Values.controller.serviceAccount.name | default "meshfork-controller" }}{{- end }}

{{- define "meshfork.configMapName" -}}meshfork-config{{- end }}

{{- define "meshfork.image" -}}
{{- $tag := .Values.controller.image.tag | default .Chart.AppVersion -}}
{{- if .Values.controller.image.digest -}}
{{ printf "%s@%s" .Values.controller.image.repository .Values.controller.image.digest }}
{{- else -}}
{{ printf "%s:%s" .Values.controller.image.repository $tag }}
{{- end -}}
{{- end }}

{{- /* The webhook Service, its configurations (both kinds share the name) and the TLS Secret. */ -}}
{{- define "meshfork.webhookService" -}}meshfork-webhook{{- end }}
{{- define "meshfork.webhookConfiguration" -}}meshfork{{- end }}
{{- define "meshfork.webhookSecret" -}}meshfork-webhook-tls{{- end }}
{{- define "meshfork.webhooksOn" -}}{{ if and .Values.controller.enabled .Values.webhooks.enabled }}true{{ end }}{{- end }}

{{- /*
Namespaces whose objects the webhooks see: not those labelled meshfork.dev/ignore=true, and only
the watched ones when controller.namespaces is set (the controller's caches hold nothing else).
*/ -}}
{{- define "meshfork.webhookNamespaceSelector" -}}
namespaceSelector:
  matchExpressions:
    - key: meshfork.dev/ignore
      operator: NotIn
      values: ["true"]
    {{- if .Values.controller.namespaces }}
    - key: kubernetes.io/metadata.name
      operator: In
      values:
        {{- toYaml .Values.controller.namespaces | nindent 8 }}
    {{- end }}
{{- end }}

{{- define "meshfork.webhookClientConfig" -}}
clientConfig:
  service:
    name: {{ include "meshfork.webhookService" .root }}
    namespace: {{ .root.Release.Namespace | quote }}
    path: {{ .path }}
    port: 443
{{- end }}
