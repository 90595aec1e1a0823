{{/*
Labels for every object. Call with (dict "root" $ "name" "wordpress" "component" "web").
*/}}
{{- define "med.labels" -}}
{{ include "med.selectorLabels" . }}
app.kubernetes.io/component: {{ .component | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service | quote }}
app.kubernetes.io/part-of: medusa
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | quote }}
platform.example/store: {{ .root.Values.store.name | quote }}
{{- end }}

{{- define "med.selectorLabels" -}}
app.kubernetes.io/name: {{ .name | quote }}
app.kubernetes.io/instance: {{ .root.Release.Name | quote }}
{{- end }}

{{/* The store host's URL, which always serves the store. */}}
{{- define "med.platformUrl" -}}
{{ ternary "https" "http" .Values.ingress.tls }}://{{ .Values.store.host }}
{{- end }}

{{/*
Public base URL: the primary custom domain when there is one (always https: the platform sends it only
once its certificate is issued), else the store host's URL.
*/}}
{{- define "med.url" -}}
{{- if .Values.domains.primary -}}
https://{{ .Values.domains.primary }}
{{- else -}}
{{ include "med.platformUrl" . }}
{{- end -}}
{{- end }}

{{/*
Every origin the store is served on, comma-separated as Medusa's *_CORS settings take them: the store
host and each routed custom domain (https: each has its own Certificate), so a storefront or the admin
works on whichever host a shopper or merchant uses.
*/}}
{{- define "med.corsOrigins" -}}
{{- $origins := list (include "med.platformUrl" .) }}
{{- range .Values.domains.hosts }}
{{- $origins = append $origins (printf "https://%s" .) }}
{{- end }}
{{- join "," $origins }}
{{- end }}

{{- define "med.image" -}}
{{ printf "%s:%s" .repository .tag }}
{{- end }}

{{/* Pod-level hardening shared by every pod (Pod Security "restricted"). Call with (dict "uid" 33). */}}
{{- define "med.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
fsGroup: {{ .uid }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Call with (dict "readOnly" true). */}}
{{- define "med.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: {{ .readOnly }}
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Environment for every process that runs the Medusa image (server, migrations, bootstrap). The
image's medusa-config.js reads nothing else; passwords come only from the existing Secret.
*/}}
{{- define "med.env" -}}
- name: NODE_ENV
  value: production
- name: MEDUSA_DISABLE_TELEMETRY
  value: "true"
- name: HOME
  value: /tmp
- name: DATABASE_HOST
  value: postgres
- name: DATABASE_PORT
  value: "5432"
- name: DATABASE_NAME
  value: medusa
- name: DATABASE_USER
  value: medusa
- name: DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.existingSecret }}
      key: database-password
- name: REDIS_URL
  value: redis://redis:6379
- name: JWT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .Values.existingSecret }}
      key: jwt-secret
- name: COOKIE_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .Values.existingSecret }}
      key: cookie-secret
- name: STORE_CORS
  value: {{ include "med.corsOrigins" . | quote }}
- name: ADMIN_CORS
  value: {{ include "med.corsOrigins" . | quote }}
- name: AUTH_CORS
  value: {{ include "med.corsOrigins" . | quote }}
{{- end }}

{{/* A custom domain's object names: a hash, since a domain can be longer than a name may be. */}}
{{- define "med.domainName" -}}
{{ printf "domain-%s" (sha256sum . | trunc 16) }}
{{- end }}

{{/* The Ingress backend: the web Service, or the paused page while suspended (templates/paused.yaml). */}}
{{- define "med.webBackend" -}}
service:
  name: {{ if .Values.suspended }}store-paused{{ else }}medusa{{ end }}
  port:
    name: http
{{- end -}}
