{{/* Names and labels. */}}
{{- define "voicegraph.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "voicegraph.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "voicegraph.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "voicegraph.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "voicegraph.selectorLabels" -}}
app.kubernetes.io/name: {{ include "voicegraph.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The Secret the pods read: the chart's own, or one the user made. */}}
{{- define "voicegraph.secretName" -}}
{{- .Values.existingSecret | default (include "voicegraph.fullname" .) -}}
{{- end -}}

{{- define "voicegraph.redisUrl" -}}
{{- if .Values.redis.bundled -}}
{{- printf "redis://%s-redis:6379/0" (include "voicegraph.fullname" .) -}}
{{- else -}}
{{- required "redis.url is required when redis.bundled is false" .Values.redis.url -}}
{{- end -}}
{{- end -}}

{{- define "voicegraph.chromaUrl" -}}
{{- if .Values.chroma.bundled -}}
{{- printf "http://%s-chroma:8000" (include "voicegraph.fullname" .) -}}
{{- else -}}
{{- required "chroma.url is required when chroma.bundled is false" .Values.chroma.url -}}
{{- end -}}
{{- end -}}

{{- define "voicegraph.plannerKind" -}}
{{- .Values.planner.kind | default (ternary "step-audio-2" "cascade" .Values.planner.gpu.enabled) -}}
{{- end -}}

{{- define "voicegraph.plannerUrl" -}}
{{- if .Values.planner.url -}}
{{- .Values.planner.url -}}
{{- else if .Values.planner.gpu.enabled -}}
{{- printf "http://%s-planner:8000/v1" (include "voicegraph.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "voicegraph.plannerModel" -}}
{{- .Values.planner.model | default (ternary .Values.planner.gpu.servedModelName "" .Values.planner.gpu.enabled) -}}
{{- end -}}

{{/* Probes address the pod as localhost: without API keys it answers only to loopback names. */}}
{{- define "voicegraph.probeHeaders" -}}
httpHeaders:
  - name: Host
    value: localhost
{{- end -}}
