{{/* Release-scoped name of the platform's objects: "platform" for `helm install platform`. */}}
{{- define "platform.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels: call with (dict "root" $ "component" "web"). */}}
{{- define "platform.labels" -}}
app.kubernetes.io/name: platform
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "platform.selectorLabels" -}}
app.kubernetes.io/name: platform
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
The domain every host derives from. values-prod.yaml ships a "<ip>.nip.io" placeholder on purpose:
installing with it would publish a dashboard nobody can reach, so rendering stops with the fix.
*/}}
{{- define "platform.domain" -}}
{{- $domain := .Values.domain | default "" | trim -}}
{{- if or (not $domain) (contains "<" $domain) (contains ">" $domain) -}}
{{- fail (printf "domain is %q: set it to the server's public name, e.g. --set domain=203.0.113.10.nip.io (the server's public IP followed by .nip.io)" $domain) -}}
{{- end -}}
{{- $domain -}}
{{- end -}}

{{- define "platform.host" -}}
{{- printf "%s.%s" .Values.ingress.subdomain (include "platform.domain" .) -}}
{{- end -}}

{{- define "platform.url" -}}
{{- printf "%s://%s" .Values.stores.urlScheme (include "platform.host" .) -}}
{{- end -}}

{{- define "platform.image" -}}
{{- printf "%s:%s" .repository .tag -}}
{{- end -}}

{{- define "platform.secretName" -}}
{{- printf "%s-secrets" (include "platform.fullname" .) -}}
{{- end -}}

{{/* The worker's (orchestrator's) ServiceAccount: the only one with deployer powers. */}}
{{- define "platform.serviceAccountName" -}}
{{- include "platform.fullname" . -}}
{{- end -}}

{{/* The web pods' ServiceAccount: reads store-credentials Secrets in store namespaces, nothing else. */}}
{{- define "platform.webServiceAccountName" -}}
{{- printf "%s-web" (include "platform.fullname" .) -}}
{{- end -}}

{{/* Pod-level hardening (Pod Security "restricted"). Call with (dict "uid" 10001). */}}
{{- define "platform.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
fsGroup: {{ .uid }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "platform.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Where the app reaches PostgreSQL and Redis: the chart's own StatefulSets or external services. */}}
{{- define "platform.postgresHost" -}}
{{- printf "%s-postgres" (include "platform.fullname" .) -}}
{{- end -}}

{{- define "platform.redisHost" -}}
{{- printf "%s-redis" (include "platform.fullname" .) -}}
{{- end -}}

{{/*
The environment shared by web, worker, beat and the migrations Job: every variable
platform_site/settings.py reads in production. Secrets come from Secrets, never from values.
*/}}
{{- define "platform.env" -}}
- name: DJANGO_SETTINGS_MODULE
  value: platform_site.settings
- name: PLATFORM_ENV
  value: prod
- name: SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "platform.secretName" . }}
      key: secret-key
{{- if .Values.postgres.enabled }}
- name: DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "platform.secretName" . }}
      key: database-password
# The password is generated from URL-safe characters, so it can sit in the URL unescaped.
- name: DATABASE_URL
  value: {{ printf "postgres://platform:$(DATABASE_PASSWORD)@%s:5432/platform" (include "platform.postgresHost" .) | quote }}
{{- else }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ required "postgres.external.existingSecret is required when postgres.enabled is false" .Values.postgres.external.existingSecret }}
      key: {{ .Values.postgres.external.urlKey }}
{{- end }}
{{- if .Values.redis.enabled }}
- name: CELERY_BROKER_URL
  value: {{ printf "redis://%s:6379/0" (include "platform.redisHost" .) | quote }}
- name: REDIS_URL
  value: {{ printf "redis://%s:6379/1" (include "platform.redisHost" .) | quote }}
{{- else }}
- name: CELERY_BROKER_URL
  valueFrom:
    secretKeyRef:
      name: {{ required "redis.external.existingSecret is required when redis.enabled is false" .Values.redis.external.existingSecret }}
      key: {{ .Values.redis.external.brokerUrlKey }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.external.existingSecret }}
      key: {{ .Values.redis.external.cacheUrlKey }}
{{- end }}
- name: ALLOWED_HOSTS
  value: {{ include "platform.host" . | quote }}
- name: CSRF_TRUSTED_ORIGINS
  value: {{ include "platform.url" . | quote }}
- name: SECURE_SSL_REDIRECT
  value: {{ eq .Values.stores.urlScheme "https" | quote }}
- name: STORE_BASE_DOMAIN
  value: {{ include "platform.domain" . | quote }}
- name: DASHBOARD_HOST
  value: {{ include "platform.host" . | quote }}
- name: STORE_URL_SCHEME
  value: {{ .Values.stores.urlScheme | quote }}
- name: STORE_INGRESS_CLASS
  value: {{ .Values.ingress.className | quote }}
- name: STORE_STORAGE_CLASS
  value: {{ .Values.storage.className | quote }}
- name: STORE_INGRESS_CONTROLLER_NAMESPACE
  value: {{ .Values.stores.ingressController.namespace | quote }}
- name: STORE_INGRESS_CONTROLLER_POD_LABELS
  value: {{ include "platform.podLabelsEnv" .Values.stores.ingressController.podLabels | quote }}
- name: STORE_CLUSTER_CIDRS
  value: {{ join "," .Values.stores.clusterCIDRs | quote }}
- name: STORE_POD_SECURITY_LEVEL
  value: {{ .Values.stores.podSecurityLevel | quote }}
- name: DOMAIN_CLUSTER_ISSUER
  value: {{ .Values.stores.domains.clusterIssuer | quote }}
- name: DOMAIN_ACME_HTTP01
  value: {{ .Values.stores.domains.acmeHttp01Solver | quote }}
# A suspended store's Ingress reaches this release's web Service through an ExternalName.
- name: STORE_PAUSED_BACKEND_HOST
  value: {{ printf "%s-web.%s.svc.cluster.local" (include "platform.fullname" .) .Release.Namespace | quote }}
- name: STORE_PAUSED_BACKEND_PORT
  value: "80"
- name: STORE_CHARTS_DIR
  value: /app/charts
# Empty: in-cluster config from the mounted ServiceAccount token (helm gets the same through
# KUBERNETES_SERVICE_HOST/PORT, which the HelmClient passes on).
- name: KUBECONFIG
  value: ""
- name: HELM_BINARY
  value: /usr/local/bin/helm
- name: PLATFORM_SERVICE_ACCOUNT
  value: {{ printf "%s/%s" .Release.Namespace (include "platform.serviceAccountName" .) | quote }}
- name: STORE_DEPLOYER_CLUSTER_ROLE
  value: {{ .Values.rbac.storeDeployerRole | quote }}
- name: PLATFORM_WEB_SERVICE_ACCOUNT
  value: {{ printf "%s/%s" .Release.Namespace (include "platform.webServiceAccountName" .) | quote }}
- name: STORE_CREDENTIALS_READER_CLUSTER_ROLE
  value: {{ .Values.rbac.storeCredentialsReaderRole | quote }}
- name: PROVISIONING_TIMEOUT
  value: {{ .Values.stores.provisioningTimeout | quote }}
- name: PROVISIONING_CONCURRENCY
  value: {{ .Values.stores.provisioningConcurrency | quote }}
{{- include "platform.emailEnv" . }}
{{- include "platform.backupEnv" . }}
- name: LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- end -}}

{{/* django-environ's env.dict format: "key=value,key=value". */}}
{{- define "platform.podLabelsEnv" -}}
{{- $pairs := list -}}
{{- range $key, $value := . -}}
{{- $pairs = append $pairs (printf "%s=%s" $key $value) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/* Writable scratch for a read-only root filesystem: helm's home and state live under /app/var. */}}
{{- define "platform.scratchMounts" -}}
- name: tmp
  mountPath: /tmp
- name: var
  mountPath: /app/var
{{- end -}}

{{- define "platform.scratchVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
- name: var
  emptyDir:
    sizeLimit: 512Mi
{{- end -}}


{{/*
E-mail: SMTP in production, its password from a Secret. The console backend is refused here and by
the settings: it would write password-reset links to the pod's log.
*/}}
{{/* Store backups (stores/backups.py): nothing while backups.s3.endpoint is empty (backups off). The
bucket's keys only ever come from backups.s3.existingSecret, by reference. */}}
{{- define "platform.backupEnv" -}}
{{- $backups := .Values.backups }}
{{- with $backups.s3.endpoint }}
- name: BACKUP_S3_ENDPOINT
  value: {{ . | quote }}
- name: BACKUP_S3_BUCKET
  value: {{ required "backups.s3.bucket is required with backups.s3.endpoint: the bucket every store's backups go to" ($backups.s3.bucket | default "" | trim | default nil) | quote }}
- name: BACKUP_S3_REGION
  value: {{ $backups.s3.region | quote }}
- name: BACKUP_S3_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ required "backups.s3.existingSecret is required with backups.s3.endpoint: a Secret in the release namespace with the bucket's keys under access-key and secret-key (kubectl -n <namespace> create secret generic backup-s3 --from-literal=access-key=... --from-literal=secret-key=...)" ($backups.s3.existingSecret | default "" | trim | default nil) | quote }}
      key: access-key
- name: BACKUP_S3_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $backups.s3.existingSecret | trim | quote }}
      key: secret-key
- name: BACKUP_S3_EGRESS
  value: {{ join "," ($backups.s3.egressCIDRs | default list) | quote }}
{{- with $backups.s3.egressPort }}
- name: BACKUP_S3_EGRESS_PORT
  value: {{ . | quote }}
{{- end }}
{{- end }}
- name: BACKUP_FINAL_GRACE_DAYS
  value: {{ $backups.finalGraceDays | quote }}
- name: BACKUP_MANUAL_RETENTION_DAYS
  value: {{ $backups.manualRetentionDays | quote }}
{{- end -}}

{{- define "platform.emailEnv" -}}
{{- $email := .Values.email }}
{{- if eq $email.backend "django.core.mail.backends.console.EmailBackend" }}
{{- fail "email.backend is the console backend, which writes password-reset links to the pod's log: use the smtp backend with email.smtp.host" }}
{{- end }}
- name: EMAIL_BACKEND
  value: {{ $email.backend | quote }}
- name: DEFAULT_FROM_EMAIL
  value: {{ $email.from | quote }}
{{- if eq $email.backend "django.core.mail.backends.smtp.EmailBackend" }}
- name: EMAIL_HOST
  value: {{ required "email.smtp.host is required with the smtp backend: password-reset mails must reach merchants, e.g. --set email.smtp.host=smtp.example.com" ($email.smtp.host | default "" | trim | nospace | default nil) | quote }}
- name: EMAIL_PORT
  value: {{ $email.smtp.port | quote }}
- name: EMAIL_HOST_USER
  value: {{ $email.smtp.user | default "" | quote }}
{{- with $email.smtp.existingSecret }}
- name: EMAIL_HOST_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ . | quote }}
      key: smtp-password
{{- end }}
- name: EMAIL_USE_TLS
  value: {{ eq $email.smtp.security "starttls" | quote }}
- name: EMAIL_USE_SSL
  value: {{ eq $email.smtp.security "tls" | quote }}
- name: EMAIL_TIMEOUT
  value: {{ $email.smtp.timeout | default 10 | quote }}
{{- else if eq $email.backend "django.core.mail.backends.filebased.EmailBackend" }}
- name: EMAIL_FILE_PATH
  value: /app/var/mail
{{- end }}
{{- end -}}
