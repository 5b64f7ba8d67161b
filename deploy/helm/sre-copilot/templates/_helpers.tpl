{{/* The release's name for its objects, within the 63 characters of a DNS label. */}}
{{- define "sre-copilot.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* A service's Kubernetes name: ai_worker -> <fullname>-ai-worker (no underscores in DNS names). */}}
{{- define "sre-copilot.component" -}}
{{- printf "%s-%s" (include "sre-copilot.fullname" .root) (.name | replace "_" "-") -}}
{{- end -}}

{{- define "sre-copilot.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "sre-copilot.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name | replace "_" "-" }}
{{- end -}}

{{- define "sre-copilot.secretName" -}}
{{- if .Values.secrets.create -}}
{{- include "sre-copilot.fullname" . -}}
{{- else -}}
{{- required "secrets.existingSecret: name the Secret with DATABASE_URL and JWT_PRIVATE_KEY (or set secrets.create)" .Values.secrets.existingSecret -}}
{{- end -}}
{{- end -}}

{{/* The NATS chart names its client Service after the release, as here: <release>-nats, or the
release's name when it already contains "nats". */}}
{{- define "sre-copilot.natsUrl" -}}
{{- if .Values.natsUrl -}}
{{- .Values.natsUrl -}}
{{- else if not .Values.nats.enabled -}}
{{- fail "natsUrl: name your NATS servers when nats.enabled is false" -}}
{{- else -}}
{{- $name := .Values.nats.fullnameOverride | default (ternary .Release.Name (printf "%s-nats" .Release.Name) (contains "nats" .Release.Name)) -}}
{{- printf "nats://%s.%s.svc:4222" ($name | trunc 63 | trimSuffix "-") .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{- define "sre-copilot.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* An environment variable from the Secret; optional ones may be absent from it. */}}
{{- define "sre-copilot.secretEnv" -}}
- name: {{ .key }}
  valueFrom:
    secretKeyRef:
      name: {{ include "sre-copilot.secretName" .root }}
      key: {{ .key }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end -}}

{{/* What every process of the platform is given (the services and the migrate Job). */}}
{{- define "sre-copilot.commonEnv" -}}
- name: NATS_URL
  value: {{ include "sre-copilot.natsUrl" . | quote }}
- name: STREAM_REPLICAS
  value: {{ .Values.streamReplicas | quote }}
- name: LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{ include "sre-copilot.secretEnv" (dict "root" . "key" "DATABASE_URL") }}
{{- range $key, $value := .Values.extraEnv }}
- name: {{ $key }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}
