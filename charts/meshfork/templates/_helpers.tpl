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
