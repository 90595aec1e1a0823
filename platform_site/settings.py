"""Settings for the store platform.

Everything is read through one `environ.Env()`; production differs from local only by environment
variables (see the README's settings table). Local defaults need nothing installed: SQLite in `var/`
and a filesystem Celery broker.
"""

from __future__ import annotations

import ipaddress
import os
from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

# ---------------------------------------------------------------------------------------------------
# Mode and secrets — https://docs.djangoproject.com/en/5.2/ref/settings/#debug
# ---------------------------------------------------------------------------------------------------
PLATFORM_ENV = env.str("PLATFORM_ENV", default="local")
if PLATFORM_ENV not in {"local", "prod"}:
    raise environ.ImproperlyConfigured(f"PLATFORM_ENV must be 'local' or 'prod', not {PLATFORM_ENV!r}")
DEBUG = env.bool("DEBUG", default=PLATFORM_ENV == "local")

if DEBUG:
    # A fixed development key is harmless because DEBUG is never on in production mode.
    SECRET_KEY = env.str("SECRET_KEY", default="local-development-only-not-secret")
else:
    SECRET_KEY = env.str("SECRET_KEY")  # required: no default outside DEBUG

# Host names the dashboard answers to. Store subdomains are served by each store's own ingress,
# never by this app, so no wildcard is needed or allowed.
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# ---------------------------------------------------------------------------------------------------
# Applications — https://docs.djangoproject.com/en/5.2/ref/settings/#installed-apps
# ---------------------------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "stores",
    "provisioning",
]

MIDDLEWARE = [
    # First: a paused store's visitors arrive with the store's Host, which get_host() below would refuse.
    "stores.paused.PausedStoreMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "platform_site.middleware.DatabaseUnavailableMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "platform_site.security.SessionIdleTimeoutMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "platform_site.security.ContentSecurityPolicyMiddleware",
    # Last, as django-axes requires: it turns a refused sign-in into the lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "platform_site.urls"
WSGI_APPLICATION = "platform_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "provisioning.context_processors.cluster_banner",
            ],
        },
    },
]

# ---------------------------------------------------------------------------------------------------
# Database — https://django-environ.readthedocs.io/en/latest/types.html#environ-env-db-url
# ---------------------------------------------------------------------------------------------------
VAR_DIR.mkdir(exist_ok=True)
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'platform.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while a worker writes; the timeout rides out short write locks.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            # Take the write lock at BEGIN so a read-then-write claim never fails half-way.
            "transaction_mode": "IMMEDIATE",
        }
    )
    # A file (not :memory:) so worker processes started by tests can share it; one per test session
    # by default (or TEST_DATABASE_NAME) so two test runs on one checkout never share a database.
    DATABASES["default"]["TEST"] = {
        "NAME": env.str("TEST_DATABASE_NAME", default=str(VAR_DIR / f"test-platform-{os.getpid()}.sqlite3"))
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ---------------------------------------------------------------------------------------------------
# Auth — https://docs.djangoproject.com/en/5.2/topics/auth/passwords/#password-validation
# ---------------------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/stores/"
LOGOUT_REDIRECT_URL = "/"
# Signup, password reset, credential reveals and token creation: attempts allowed per client IP (and
# per email or user where it applies) within the window (Django cache; stores/ratelimit.py).
AUTH_RATE_LIMIT_ATTEMPTS = env.int("AUTH_RATE_LIMIT_ATTEMPTS", default=5)
AUTH_RATE_LIMIT_WINDOW_SECONDS = env.int("AUTH_RATE_LIMIT_WINDOW_SECONDS", default=300)
# Behind the ingress every request comes from the proxy: count this many trusted hops from the right
# of X-Forwarded-For to find the client. 0 (local runs) trusts only REMOTE_ADDR; the platform chart
# sets 1 for its ingress controller.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# Credential reveals one user may make on the pages per window (each is a Kubernetes call and an event).
CREDENTIALS_REVEAL_ATTEMPTS = env.int("CREDENTIALS_REVEAL_ATTEMPTS", default=10)

# Sign-in lockout (merchant login and /admin/login/) — https://django-axes.readthedocs.io/
# Failed sign-ins allowed per (account, client IP) pair, and per client IP across all accounts, within
# AUTH_RATE_LIMIT_WINDOW_SECONDS of the last failure. Counted atomically by stores/auth_limits.py.
AUTH_LOCKOUT_ATTEMPTS = env.int("AUTH_LOCKOUT_ATTEMPTS", default=5)
AUTH_LOCKOUT_CLIENT_ATTEMPTS = env.int("AUTH_LOCKOUT_CLIENT_ATTEMPTS", default=30)
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out attempt before any password check
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "stores.auth_limits.AtomicLockoutHandler"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_FAILURE_LIMIT = AUTH_LOCKOUT_ATTEMPTS
AXES_COOLOFF_TIME = timedelta(seconds=AUTH_RATE_LIMIT_WINDOW_SECONDS)
AXES_CLIENT_IP_CALLABLE = "stores.auth_limits.lockout_client_ip"
AXES_USERNAME_CALLABLE = "stores.auth_limits.lockout_username"
AXES_LOCKOUT_CALLABLE = "stores.auth_limits.lockout_response"
AXES_RESET_ON_SUCCESS = False  # the handler gives back only the pair's count, never the client's
AXES_DISABLE_ACCESS_LOG = True  # successful sign-ins need no table of their own
AXES_VERBOSE = False
# API tokens (django-rest-knox, stored hashed) expire; merchants create new ones on the tokens page.
# https://jazzband.github.io/django-rest-knox/settings/
API_TOKEN_TTL_DAYS = env.int("API_TOKEN_TTL_DAYS", default=90)
# knox's token model is swappable; stores.ApiTokenScope points at it through this setting.
KNOX_TOKEN_MODEL = "knox.AuthToken"  # noqa: S105 (a model name, not a password)
REST_KNOX = {"TOKEN_TTL": timedelta(days=API_TOKEN_TTL_DAYS), "AUTH_HEADER_PREFIX": "Token"}
# Live tokens one user may hold per organisation (each is a standing credential to revoke one day).
API_TOKEN_MAX_PER_USER = env.int("API_TOKEN_MAX_PER_USER", default=20)

# ---------------------------------------------------------------------------------------------------
# Internationalisation and static files — https://whitenoise.readthedocs.io/
# ---------------------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# ---------------------------------------------------------------------------------------------------
# Security in production — https://docs.djangoproject.com/en/5.2/howto/deployment/checklist/
# ---------------------------------------------------------------------------------------------------
if not DEBUG:
    # TLS ends at the ingress controller, which sets X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Probes hit the pod directly over HTTP; they must not be redirected.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    # __Host- cookies are refused by browsers unless Secure, Path=/ and without Domain: no store on a
    # sibling subdomain (merchant-run PHP) can set or shadow the dashboard's session or CSRF cookie.
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"
    SESSION_COOKIE_DOMAIN = None
    CSRF_COOKIE_DOMAIN = None
    SESSION_COOKIE_PATH = "/"
    CSRF_COOKIE_PATH = "/"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Sessions end after this much inactivity (seconds): merchants 8 hours, staff 30 minutes (the admin
# can tear down every store). platform_site/security.py SessionIdleTimeoutMiddleware enforces them.
SESSION_IDLE_TIMEOUT_MERCHANT = env.int("SESSION_IDLE_TIMEOUT_MERCHANT", default=8 * 3600)
SESSION_IDLE_TIMEOUT_STAFF = env.int("SESSION_IDLE_TIMEOUT_STAFF", default=30 * 60)
SESSION_COOKIE_AGE = SESSION_IDLE_TIMEOUT_MERCHANT  # was Django's 14 days
# No inline script or style anywhere but the Swagger UI page's <style> (its template's own).
# https://developer.mozilla.org/en-US/docs/Web/HTTP/Headers/Content-Security-Policy
_CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}
CONTENT_SECURITY_POLICY = "; ".join(f"{k} {v}" for k, v in _CSP.items())
CONTENT_SECURITY_POLICY_API_DOCS_PATH = "/api/docs/"
CONTENT_SECURITY_POLICY_API_DOCS = "; ".join(
    f"{k} {v}" for k, v in {**_CSP, "style-src": "'self' 'unsafe-inline'"}.items()
)
DATA_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024  # no form or API body here needs more

# ---------------------------------------------------------------------------------------------------
# Email — https://docs.djangoproject.com/en/5.2/topics/email/
# ---------------------------------------------------------------------------------------------------
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.console.EmailBackend"
    if PLATFORM_ENV == "local"
    else "django.core.mail.backends.smtp.EmailBackend",
)
if PLATFORM_ENV == "prod" and EMAIL_BACKEND == "django.core.mail.backends.console.EmailBackend":
    # Issue 15: the console backend prints password-reset links to the pod's log, where reading stdout
    # is enough to take over an account.
    raise environ.ImproperlyConfigured(
        "EMAIL_BACKEND is the console backend, which writes password-reset links to the log: production "
        "mode (PLATFORM_ENV=prod) needs a real one. Set EMAIL_BACKEND=django.core.mail.backends.smtp."
        "EmailBackend with EMAIL_HOST (charts/platform: email.smtp.host)."
    )
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)  # STARTTLS, usually port 587
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)  # implicit TLS, usually port 465
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)  # a slow relay must not hold a web worker forever
# Where the file-based backend (the platform chart's local values) writes one file per message.
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Store Platform <noreply@localhost>")

# ---------------------------------------------------------------------------------------------------
# Cache — https://docs.djangoproject.com/en/5.2/topics/cache/
# ---------------------------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# ---------------------------------------------------------------------------------------------------
# Partner API — https://www.django-rest-framework.org/api-guide/settings/
# ---------------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # knox first: its `Token` scheme makes unauthenticated requests 401 (with WWW-Authenticate), not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # knox's scheme, plus the tenant and role each token is bound to (stores/api/authentication.py).
        "stores.api.authentication.ScopedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only: a form-encoded or text body is a 415, never silently half-parsed.
    "DEFAULT_PARSER_CLASSES": ["stores.api.parsers.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PAGINATION_CLASS": "stores.api.pagination.StorePagination",
    "DEFAULT_FILTER_BACKENDS": ["rest_framework.filters.OrderingFilter"],
    # Throttle counters live in the default cache: Redis when REDIS_URL is set, so every web process
    # shares one count; per-process memory otherwise.
    "DEFAULT_THROTTLE_CLASSES": [
        "stores.api.throttling.TokenRateThrottle",
        "stores.api.throttling.IPRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "token": env.str("API_THROTTLE_TOKEN_RATE", default="120/min"),
        "ip": env.str("API_THROTTLE_IP_RATE", default="300/min"),
    },
    # The same hop count as every other per-client limit (platform_site/security.py); DRF's default
    # (None) would trust a client-supplied X-Forwarded-For.
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    "EXCEPTION_HANDLER": "stores.api.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
# https://drf-spectacular.readthedocs.io/en/latest/settings.html
SPECTACULAR_SETTINGS = {
    "TITLE": "Store Platform API",
    "DESCRIPTION": (
        "Create, inspect and delete WooCommerce and Medusa stores. Authenticate with "
        "`Authorization: Token <token>` (tokens come from the tokens page). Errors always have the shape "
        '`{"error": {"code", "message", "fields"}}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's assets are served from this app (drf-spectacular-sidecar), never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "StoreStatusEnum": "stores.choices.StoreStatus",
        "EngineEnum": "stores.choices.Engine",
    },
}
# How long a replayable Idempotency-Key is remembered.
API_IDEMPOTENCY_TTL_HOURS = env.int("API_IDEMPOTENCY_TTL_HOURS", default=24)

# ---------------------------------------------------------------------------------------------------
# Stores and clusters
# ---------------------------------------------------------------------------------------------------
STORE_BASE_DOMAIN = env.str("STORE_BASE_DOMAIN", default="127.0.0.1.nip.io")
# Live stores across all tenants beyond which no store launches (0: no ceiling): the cluster's size,
# not any one plan's, is what a flood of signups would exhaust.
PLATFORM_MAX_LIVE_STORES = env.int("PLATFORM_MAX_LIVE_STORES", default=500)
# How long the e-mail confirmation link sent at signup works.
EMAIL_VERIFICATION_MAX_AGE_DAYS = env.int("EMAIL_VERIFICATION_MAX_AGE_DAYS", default=3)
# The dashboard's own host (charts/platform: <ingress.subdomain>.<domain>): its first label is reserved
# as a store name, since a store of that name would claim the same host.
DASHBOARD_HOST = env.str("DASHBOARD_HOST", default=f"dashboard.{STORE_BASE_DOMAIN}")
STORE_URL_SCHEME = env.str("STORE_URL_SCHEME", default="http" if PLATFORM_ENV == "local" else "https")

# ---------------------------------------------------------------------------------------------------
# Custom domains (stores/domains.py) — https://cert-manager.io/docs/usage/ingress/
# ---------------------------------------------------------------------------------------------------
# Ownership is proven by a TXT record _<prefix>.<domain> holding the domain's token.
DOMAIN_VERIFICATION_PREFIX = env.str("DOMAIN_VERIFICATION_PREFIX", default="store-platform-challenge")
# Nameservers asked for that record ("ip" or "ip:port"); empty: the system resolver (/etc/resolv.conf).
DOMAIN_DNS_NAMESERVERS = env.list("DOMAIN_DNS_NAMESERVERS", default=[])
# One lookup's whole budget (every nameserver, every retry), so a beat pass never hangs on DNS.
DOMAIN_DNS_LIFETIME_SECONDS = env.float("DOMAIN_DNS_LIFETIME_SECONDS", default=5.0)
# Re-checks of an unverified domain back off from the first interval, doubling up to the cap, and
# the domain fails (the merchant can check again) once it has waited the deadline.
DOMAIN_RECHECK_FIRST_SECONDS = env.int("DOMAIN_RECHECK_FIRST_SECONDS", default=60)
DOMAIN_RECHECK_MAX_SECONDS = env.int("DOMAIN_RECHECK_MAX_SECONDS", default=6 * 3600)
DOMAIN_VERIFY_DEADLINE_SECONDS = env.int("DOMAIN_VERIFY_DEADLINE_SECONDS", default=7 * 24 * 3600)
DOMAIN_RECHECK_INTERVAL = env.int("DOMAIN_RECHECK_INTERVAL", default=60)
# Where a merchant points the domain: a CNAME target for subdomains, A/AAAA addresses for an apex.
DOMAIN_INGRESS_CNAME_TARGET = env.str("DOMAIN_INGRESS_CNAME_TARGET", default=f"ingress.{STORE_BASE_DOMAIN}")
DOMAIN_INGRESS_ADDRESSES = env.list("DOMAIN_INGRESS_ADDRESSES", default=[])
# Hosts besides the base domain and its subdomains that no merchant may claim (the platform's own).
DOMAIN_RESERVED_HOSTS = env.list("DOMAIN_RESERVED_HOSTS", default=[])
# The cert-manager ClusterIssuer that signs custom domains' certificates (prod: letsencrypt-prod).
DOMAIN_CLUSTER_ISSUER = env.str("DOMAIN_CLUSTER_ISSUER", default="store-platform-local-ca")
# True when that issuer may solve ACME HTTP-01 (Let's Encrypt): store charts then let the ingress
# controller reach cert-manager's solver pods through their default-deny NetworkPolicy. The local CA
# issuer signs without a challenge, so nothing is opened by default.
DOMAIN_ACME_HTTP01 = env.bool("DOMAIN_ACME_HTTP01", default=False)
STORE_INGRESS_CLASS = env.str(
    "STORE_INGRESS_CLASS", default="nginx" if PLATFORM_ENV == "local" else "traefik"
)
STORE_STORAGE_CLASS = env.str(
    "STORE_STORAGE_CLASS", default="hostpath" if PLATFORM_ENV == "local" else "local-path"
)
STORE_INGRESS_CONTROLLER_NAMESPACE = env.str(
    "STORE_INGRESS_CONTROLLER_NAMESPACE",
    default="ingress-nginx" if PLATFORM_ENV == "local" else "kube-system",
)
STORE_INGRESS_CONTROLLER_POD_LABELS = env.dict(
    "STORE_INGRESS_CONTROLLER_POD_LABELS",
    default={"app.kubernetes.io/name": "ingress-nginx" if PLATFORM_ENV == "local" else "traefik"},
)
STORE_CLUSTER_CIDRS = env.list(
    "STORE_CLUSTER_CIDRS", default=["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
)
# Where a suspended store's Ingress sends its visitors: the platform's own web Service, named to the
# store namespace through an ExternalName Service (charts/*/templates/paused.yaml). The platform pods
# answer such a request by its Host with the "this store is paused" page (stores.paused).
STORE_PAUSED_BACKEND_HOST = env.str(
    "STORE_PAUSED_BACKEND_HOST", default="platform-web.platform.svc.cluster.local"
)
STORE_PAUSED_BACKEND_PORT = env.int("STORE_PAUSED_BACKEND_PORT", default=80)
STORE_CHARTS_DIR = env.path("STORE_CHARTS_DIR", default=BASE_DIR / "charts")
# Pod Security Admission level enforced on every store namespace: restricted (both store charts comply)
# or baseline. Never privileged: the platform chart's admission policy refuses that too.
STORE_POD_SECURITY_LEVEL = env.str("STORE_POD_SECURITY_LEVEL", default="restricted")
if STORE_POD_SECURITY_LEVEL not in {"baseline", "restricted"}:
    raise environ.ImproperlyConfigured(
        f"STORE_POD_SECURITY_LEVEL must be 'baseline' or 'restricted', not {STORE_POD_SECURITY_LEVEL!r}"
    )
# Empty means in-cluster config when running in a pod, else ~/.kube/config's current context.
KUBECONFIG = env.str("KUBECONFIG", default="")
KUBE_CONTEXT = env.str("KUBE_CONTEXT", default="")
# "namespace/name" of the platform's own ServiceAccount when it runs in the cluster with the
# least-privilege RBAC of charts/platform: each store namespace then gets a RoleBinding to
# STORE_DEPLOYER_CLUSTER_ROLE for it. Empty (local runs with a personal kubeconfig): no binding.
PLATFORM_SERVICE_ACCOUNT = env.str("PLATFORM_SERVICE_ACCOUNT", default="")
STORE_DEPLOYER_CLUSTER_ROLE = env.str("STORE_DEPLOYER_CLUSTER_ROLE", default="store-deployer")
# "namespace/name" of the web pods' own ServiceAccount: each store namespace gets a RoleBinding giving
# it STORE_CREDENTIALS_READER_CLUSTER_ROLE (get the store-credentials Secret) and nothing else.
PLATFORM_WEB_SERVICE_ACCOUNT = env.str("PLATFORM_WEB_SERVICE_ACCOUNT", default="")
STORE_CREDENTIALS_READER_CLUSTER_ROLE = env.str(
    "STORE_CREDENTIALS_READER_CLUSTER_ROLE", default="store-credentials-reader"
)
# helm binary: HELM_BINARY, else `helm` on PATH, else the pinned one in .tools/bin (see HelmClient).
HELM_BINARY = env.str("HELM_BINARY", default="")
TOOLS_BIN_DIR = BASE_DIR / ".tools" / "bin"
# Fernet key sealing stored cluster kubeconfigs (provisioning/credential_box.py); required in production
# once a cluster with stored credentials exists. Locally a key is derived from SECRET_KEY.
CLUSTER_CREDENTIALS_KEY = env.str("CLUSTER_CREDENTIALS_KEY", default="")
# Set by `make demo`: every page says the cluster is simulated.
CLUSTER_IS_SIMULATED = env.bool("CLUSTER_IS_SIMULATED", default=False)
# Set by `make demo` on the real control plane of `make cluster`: its nodes are kwok's, no pods run.
CLUSTER_NODES_SIMULATED = env.bool("CLUSTER_NODES_SIMULATED", default=False)

# A store's activity (events, pods, logs, usage: stores/activity.py) reaches the apiserver on each view;
# this many views per user per window.
STORE_ACTIVITY_RATE_LIMIT = env.int("STORE_ACTIVITY_RATE_LIMIT", default=30)
STORE_ACTIVITY_RATE_WINDOW_SECONDS = env.int("STORE_ACTIVITY_RATE_WINDOW_SECONDS", default=60)

# ---------------------------------------------------------------------------------------------------
# Outbound webhooks (stores/webhooks.py) — https://www.standardwebhooks.com/
# ---------------------------------------------------------------------------------------------------
# Ranges staff allow as webhook targets although the SSRF guard would refuse them (loopback, private,
# cluster); empty in production unless a partner's receiver really lives on a private network.
WEBHOOK_ALLOWED_TARGET_CIDRS = env.list("WEBHOOK_ALLOWED_TARGET_CIDRS", default=[])
WEBHOOK_CONNECT_TIMEOUT_SECONDS = env.float("WEBHOOK_CONNECT_TIMEOUT_SECONDS", default=5.0)
WEBHOOK_READ_TIMEOUT_SECONDS = env.float("WEBHOOK_READ_TIMEOUT_SECONDS", default=15.0)
# Retries: WEBHOOK_RETRY_BASE_SECONDS * 4^(attempt-1), capped, with +-20 % jitter, for this long.
WEBHOOK_RETRY_BASE_SECONDS = env.float("WEBHOOK_RETRY_BASE_SECONDS", default=5.0)
WEBHOOK_RETRY_MAX_DELAY_SECONDS = env.float("WEBHOOK_RETRY_MAX_DELAY_SECONDS", default=6 * 3600.0)
WEBHOOK_RETRY_WINDOW_HOURS = env.int("WEBHOOK_RETRY_WINDOW_HOURS", default=24)
# An endpoint failing every attempt for this long is disabled and its owner told on the webhooks page.
WEBHOOK_DISABLE_AFTER_DAYS = env.int("WEBHOOK_DISABLE_AFTER_DAYS", default=3)
# After a rotation the old secret signs too (a second signature) for this long.
WEBHOOK_SECRET_ROTATION_GRACE_HOURS = env.int("WEBHOOK_SECRET_ROTATION_GRACE_HOURS", default=24)
WEBHOOK_MAX_ENDPOINTS_PER_TENANT = env.int("WEBHOOK_MAX_ENDPOINTS_PER_TENANT", default=10)
# Retries sooner than this go to the broker with a countdown; later ones wait for the periodic sweep
# (a countdown far beyond the broker's visibility timeout would be redelivered early).
WEBHOOK_DIRECT_RETRY_MAX_SECONDS = env.float("WEBHOOK_DIRECT_RETRY_MAX_SECONDS", default=300.0)
WEBHOOK_SWEEP_INTERVAL = env.int("WEBHOOK_SWEEP_INTERVAL", default=30)

# ---------------------------------------------------------------------------------------------------
# Backups (stores/backups.py, deploy/backup/store-backup.sh) — S3: https://docs.aws.amazon.com/AmazonS3/
# ---------------------------------------------------------------------------------------------------
# Any S3-compatible store. With no endpoint, backups are refused with "backups are not configured".
BACKUP_S3_ENDPOINT = env.str("BACKUP_S3_ENDPOINT", default="")
BACKUP_S3_BUCKET = env.str("BACKUP_S3_BUCKET", default="")
BACKUP_S3_REGION = env.str("BACKUP_S3_REGION", default="us-east-1")
BACKUP_S3_ACCESS_KEY = env.str("BACKUP_S3_ACCESS_KEY", default="")
BACKUP_S3_SECRET_KEY = env.str("BACKUP_S3_SECRET_KEY", default="")
# Where a backup, restore or drill Job may connect besides its database and DNS: the store charts'
# backup-to-object-store NetworkPolicy (stores/release.py, store_backup_egress). IPv4 CIDRs, e.g.
# "203.0.113.0/24,198.51.100.7/32". Set them: a hostname's addresses change (S3's rotate), and an
# in-cluster object store is matched by its pods' addresses, never its Service's ClusterIP (policy
# engines see the destination after the Service's translation). Empty: the endpoint's host is resolved
# each time a store's values are built, with a warning in the worker's log.
BACKUP_S3_EGRESS = env.list("BACKUP_S3_EGRESS", default=[])
for _cidr in BACKUP_S3_EGRESS:
    try:
        if "/" not in _cidr:
            raise ValueError
        ipaddress.IPv4Network(_cidr, strict=False)
    except ValueError:
        raise environ.ImproperlyConfigured(
            f"BACKUP_S3_EGRESS must list IPv4 CIDRs such as 203.0.113.0/24, not {_cidr!r}"
        ) from None
# The object store's TCP port as its pods listen (for an in-cluster one, the Service's targetPort).
# 0: the endpoint URL's port, else 443 for https and 80 for http.
BACKUP_S3_EGRESS_PORT = env.int("BACKUP_S3_EGRESS_PORT", default=0)
if not 0 <= BACKUP_S3_EGRESS_PORT <= 65535:
    raise environ.ImproperlyConfigured(
        f"BACKUP_S3_EGRESS_PORT must be a TCP port (or 0 for the endpoint's), not {BACKUP_S3_EGRESS_PORT}"
    )
# The script the Jobs run, shipped to each store namespace as a ConfigMap.
BACKUP_SCRIPT_PATH = env.str(
    "BACKUP_SCRIPT_PATH", default=str(BASE_DIR / "deploy" / "backup" / "store-backup.sh")
)
# How long a backup, restore or drill Job may run before it is failed with "timed out".
BACKUP_JOB_TIMEOUT = env.int("BACKUP_JOB_TIMEOUT", default=1800)
# A deleted store's final backup stays restorable into a new store for this long.
BACKUP_FINAL_GRACE_DAYS = env.int("BACKUP_FINAL_GRACE_DAYS", default=30)
# Manual and safety backups are kept this long; scheduled ones by the plan's daily/weekly counts.
BACKUP_MANUAL_RETENTION_DAYS = env.int("BACKUP_MANUAL_RETENTION_DAYS", default=30)
# How often beat looks for stores due a scheduled backup and for expired backups.
BACKUP_SCHEDULE_INTERVAL = env.int("BACKUP_SCHEDULE_INTERVAL", default=3600)

# ---------------------------------------------------------------------------------------------------
# The provisioning time budget — one number drives every limit
# ---------------------------------------------------------------------------------------------------
# The soft limit fires first: the task asks helm to stop (SIGTERM), helm rolls its release back and
# the run fails with a clear "timed out" reason. helm's own --timeout is the backstop if that signal
# is lost; the hard limit leaves helm time to finish a rollback; the broker's visibility timeout must
# exceed everything so that an acks_late task is never redelivered while it still runs.
PROVISIONING_TIMEOUT = env.int("PROVISIONING_TIMEOUT", default=600)
PROVISIONING_TASK_SOFT_TIME_LIMIT = PROVISIONING_TIMEOUT
PROVISIONING_HELM_TIMEOUT = PROVISIONING_TIMEOUT + 60
PROVISIONING_TASK_TIME_LIMIT = PROVISIONING_HELM_TIMEOUT + 120
PROVISIONING_VISIBILITY_TIMEOUT = PROVISIONING_TASK_TIME_LIMIT + 300
# How long teardown waits for a namespace to disappear before reporting what blocks it.
TEARDOWN_NAMESPACE_TIMEOUT = env.int("TEARDOWN_NAMESPACE_TIMEOUT", default=180)
# At most this many helm processes run at once across all workers (a small cluster is not flooded).
PROVISIONING_CONCURRENCY = env.int("PROVISIONING_CONCURRENCY", default=4)
# How often a run waiting for a helm slot asks again by itself. Only a safety net: the run that frees
# a slot hands it to the oldest waiting run at once (provisioning_runs_hand_off).
PROVISIONING_WAITING_POLL_SECONDS = env.int("PROVISIONING_WAITING_POLL_SECONDS", default=60)

# ---------------------------------------------------------------------------------------------------
# Celery — https://docs.celeryq.dev/en/stable/userguide/configuration.html
# ---------------------------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = Path(env.str("BROKER_DATA_DIR", default=str(VAR_DIR / "broker")))
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        "polling_interval": 0.2,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": PROVISIONING_VISIBILITY_TIMEOUT}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = PROVISIONING_TASK_SOFT_TIME_LIMIT
CELERY_TASK_TIME_LIMIT = PROVISIONING_TASK_TIME_LIMIT
CELERY_TASK_IGNORE_RESULT = True  # results live on run rows, never in a result backend
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A request must not hang when the broker is down: publishing fails fast and the reconciler
# re-dispatches the stored run when the broker is back.
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
RECONCILE_INTERVAL = env.int("RECONCILE_INTERVAL", default=30)
# How long a ready store's workload may stay not-ready (a rollout, a restart) before the store is
# marked degraded by the fleet watcher (stores/fleet.py).
STORE_DEGRADE_AFTER_SECONDS = env.int("STORE_DEGRADE_AFTER_SECONDS", default=30)
# How often a running rollout (stores/upgrades.py) looks at its batch and decides what next.
ROLLOUT_STEP_INTERVAL = env.int("ROLLOUT_STEP_INTERVAL", default=10)
# How often the payment rule (stores/suspension.py) suspends unpaid tenants' stores and resumes paid ones.
PAYMENT_ENFORCE_INTERVAL = env.int("PAYMENT_ENFORCE_INTERVAL", default=300)
CELERY_BEAT_SCHEDULE = {
    "enforce-payment": {"task": "stores.tasks.enforce_payment", "schedule": float(PAYMENT_ENFORCE_INTERVAL)},
    "reap-and-reconcile": {"task": "provisioning.tasks.reconcile", "schedule": float(RECONCILE_INTERVAL)},
    "recheck-domains": {"task": "stores.tasks.domains_recheck", "schedule": float(DOMAIN_RECHECK_INTERVAL)},
    "advance-rollouts": {"task": "stores.tasks.advance_rollouts", "schedule": float(ROLLOUT_STEP_INTERVAL)},
    "backups-schedule-and-expire": {
        "task": "stores.tasks.backups_housekeeping",
        "schedule": float(BACKUP_SCHEDULE_INTERVAL),
    },
    "send-due-webhooks": {
        "task": "stores.tasks.send_due_webhooks",
        "schedule": float(WEBHOOK_SWEEP_INTERVAL),
    },
}

# ---------------------------------------------------------------------------------------------------
# Logging — https://docs.djangoproject.com/en/5.2/topics/logging/
# ---------------------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "provisioning.redaction.RedactingFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # django-axes logs every sign-in at INFO; lockouts (WARNING) are what an operator needs.
    "loggers": {"axes": {"level": "WARNING"}},
}
