{{- define "hvacstream.labels" -}}
app.kubernetes.io/name: hvacstream
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "hvacstream.image" -}}
{{ printf "%s:%s" .Values.image.repository .Values.image.tag }}
{{- end -}}

{{/* The environment every worker shares: the ConfigMap, and the Secret if one is named. */}}
{{- define "hvacstream.envFrom" -}}
- configMapRef:
    name: {{ .Release.Name }}-common
{{- if .Values.existingSecret }}
- secretRef:
    name: {{ .Values.existingSecret }}
{{- end }}
{{- end -}}
