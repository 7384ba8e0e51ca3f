{{/* Chart name, truncated to the 63 characters a label allows. */}}
{{- define "oddjob.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart unless the release name already contains the chart name. */}}
{{- define "oddjob.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "oddjob.selectorLabels" -}}
app.kubernetes.io/name: {{ include "oddjob.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "oddjob.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "oddjob.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "oddjob.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "oddjob.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "oddjob.secretName" -}}
{{- default (printf "%s-auth" (include "oddjob.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{/* The listen address: dev auth only ever binds loopback (reach it with kubectl port-forward). */}}
{{- define "oddjob.host" -}}
{{- if eq .Values.auth.mode "dev" }}127.0.0.1{{ else }}0.0.0.0{{ end }}
{{- end }}

{{/* PostgreSQL mode: database.url or database.existingSecret is set. */}}
{{- define "oddjob.postgres" -}}
{{- if or .Values.database.url .Values.database.existingSecret }}true{{ end }}
{{- end }}

{{- define "oddjob.databaseSecretName" -}}
{{- default (printf "%s-database" (include "oddjob.fullname" .)) .Values.database.existingSecret }}
{{- end }}
