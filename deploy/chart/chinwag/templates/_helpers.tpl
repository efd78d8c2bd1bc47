{{/* Names and labels shared by every resource of the chart. */}}

{{- define "chinwag.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "chinwag.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "chinwag.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "chinwag.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Labels that select one component's pods; call with (list $ "gateway"). */}}
{{- define "chinwag.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "chinwag.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "chinwag.labels" -}}
{{ include "chinwag.selectorLabels" . }}
app.kubernetes.io/part-of: chinwag
app.kubernetes.io/version: {{ (index . 0).Chart.AppVersion | quote }}
{{- end }}

{{- define "chinwag.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "chinwag.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "chinwag.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "chinwag.databaseSecret" -}}
{{- if .Values.database.url }}
{{- printf "%s-database" (include "chinwag.fullname" .) }}
{{- else }}
{{- required "database.existingSecret or database.url is required" .Values.database.existingSecret }}
{{- end }}
{{- end }}

{{/* The database URL, from its Secret. */}}
{{- define "chinwag.databaseEnv" -}}
- name: CHINWAG_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "chinwag.databaseSecret" . }}
      key: {{ if .Values.database.url }}url{{ else }}{{ .Values.database.secretKey }}{{ end }}
{{- end }}

{{/* The container of a service; call with (list $ "gateway" "http" 8080). */}}
{{- define "chinwag.container" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- $portName := index . 2 -}}
{{- $port := index . 3 -}}
- name: {{ $component }}
  image: {{ include "chinwag.image" $root }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  args: [{{ $component | quote }}]
  ports:
    - name: {{ $portName }}
      containerPort: {{ $port }}
      protocol: TCP
  envFrom:
    - configMapRef:
        name: {{ include "chinwag.fullname" $root }}-config
  env:
    {{- include "chinwag.databaseEnv" $root | nindent 4 }}
  {{- if eq $component "fanout" }}
    # The pod's ordinal picks the partitions it prefers.
    - name: CHINWAG_FANOUT_ORDINAL
      valueFrom:
        fieldRef:
          fieldPath: metadata.labels['apps.kubernetes.io/pod-index']
  {{- end }}
  startupProbe:
    httpGet:
      path: /livez
      port: {{ $portName }}
    periodSeconds: 2
    failureThreshold: 30
  livenessProbe:
    httpGet:
      path: /livez
      port: {{ $portName }}
    periodSeconds: 10
    timeoutSeconds: 3
    failureThreshold: 3
  readinessProbe:
    httpGet:
      path: /readyz
      port: {{ $portName }}
    periodSeconds: 5
    timeoutSeconds: 3
    failureThreshold: 2
  resources:
    {{- toYaml (index $root.Values $component).resources | nindent 4 }}
  securityContext:
    {{- toYaml $root.Values.securityContext | nindent 4 }}
  volumeMounts:
    - name: tmp
      mountPath: /tmp
{{- end }}

{{/* Pod-level settings shared by every service; call with (list $ "gateway"). */}}
{{- define "chinwag.podSpec" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
serviceAccountName: {{ include "chinwag.serviceAccountName" $root }}
automountServiceAccountToken: false
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
terminationGracePeriodSeconds: {{ (index $root.Values $component).terminationGracePeriodSeconds }}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: 64Mi
{{- with $root.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Annotations that roll the pods when their configuration changes. */}}
{{- define "chinwag.podAnnotations" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}
