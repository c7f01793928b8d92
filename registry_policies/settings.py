"""Settings, driven only by environment variables (django-environ).

Every knob is documented in README.md. Embedded defaults: SQLite and blobs
under REGISTRY_DATA_DIR (./data), so `make run` works on a fresh machine.
"""
import sys
from pathlib import Path

import environ

from registry_policies.core.secrets import load_or_create_secret

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DATA_DIR = Path(env.str("REGISTRY_DATA_DIR", default=str(BASE_DIR / "data"))).resolve()

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or load_or_create_secret(DATA_DIR / "secret_key")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

HOST = env.str("HOST", default="127.0.0.1")
PORT = env.int("PORT", default=5000)
REGISTRY_PUBLIC_URL = env.str("REGISTRY_PUBLIC_URL", default=f"http://{HOST}:{PORT}").rstrip("/")
REGISTRY_SERVICE = env.str("REGISTRY_SERVICE", default="registry_policies")
REGISTRY_TOKEN_TTL_SECONDS = env.int("REGISTRY_TOKEN_TTL_SECONDS", default=300)
REGISTRY_JWT_KEY_PATH = DATA_DIR / "jwt_signing_key.pem"
BLOB_STORAGE_URL = env.str("BLOB_STORAGE_URL", default=f"file://{DATA_DIR / 'blobs'}")
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
GC_GRACE_SECONDS = env.int("GC_GRACE_SECONDS", default=3600)
# A tag's last-pulled time is written at most once per this period (pulls stay read-only otherwise).
TAG_PULL_RECORD_SECONDS = env.int("TAG_PULL_RECORD_SECONDS", default=300)
# How long each process trusts its cached list of event types some webhook subscribes to.
WEBHOOK_SUBSCRIPTIONS_CACHE_SECONDS = env.int("WEBHOOK_SUBSCRIPTIONS_CACHE_SECONDS", default=10)
# Upload sessions: how long one request holds a session while it appends (any node may continue it).
UPLOAD_LEASE_SECONDS = env.int("REGISTRY_UPLOAD_LEASE_SECONDS", default=60)
# Finished webhook deliveries and mirror runs older than this are pruned daily.
RETENTION_DAYS = env.int("RETENTION_DAYS", default=90)

FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
REDIS_URL = env.str("REDIS_URL", default="")
LOG_FORMAT = env.str("LOG_FORMAT", default="console")
# --- health and metrics (core/health.py, core/metrics.py) ---
# Bearer token required to read /metrics; empty: only direct loopback requests may read it.
METRICS_BEARER_TOKEN = env.str("METRICS_BEARER_TOKEN", default="")
# Per-node directory where every process of the node writes its metric files (prometheus_client).
PROMETHEUS_MULTIPROC_DIR = Path(env.str("PROMETHEUS_MULTIPROC_DIR", default=str(DATA_DIR / "metrics")))
# --- end health and metrics ---

# -- outbound requests (webhooks, integrations, pull mirrors, Connect): see core/outbound.py --
OUTBOUND_ALLOW_LOOPBACK = env.bool("OUTBOUND_ALLOW_LOOPBACK", default=False)
OUTBOUND_DENY_PRIVATE = env.bool("OUTBOUND_DENY_PRIVATE", default=False)
# -- end outbound --

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "django_q",
    "accounts",
    "registry_policies.core",
    "registry_policies.audit",
    "registry_policies.tenancy",
    "registry_policies.repositories",
    "registry_policies.distribution",
    "registry_policies.policies",
    "registry_policies.scanning",
    "registry_policies.integrations",
    "registry_policies.mirroring",
    "registry_policies.webhooks",
    "registry_policies.api",
    "registry_policies.web",
]

MIDDLEWARE = [
    "registry_policies.core.middleware.RequestMetricsMiddleware",  # first: sees every answer
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "registry_policies.core.middleware.DatabaseUnavailableMiddleware",
]
# `/v2/` requests (the registry protocol authenticates each request by itself) run only these, in
# MIDDLEWARE's order: no sessions, CSRF, signed-in user or messages (see core/protocol_handler.py).
REGISTRY_MIDDLEWARE = [
    "registry_policies.core.middleware.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",  # Content-Length on every answer
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "registry_policies.core.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "registry_policies.urls"
WSGI_APPLICATION = "registry_policies.wsgi.application"
APPEND_SLASH = True

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
            ],
        },
    },
]

_SQLITE_DEFAULT = f"sqlite:///{DATA_DIR / 'registry.sqlite3'}"
DATABASES = {"default": env.db_url("DATABASE_URL", default=_SQLITE_DEFAULT)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + IMMEDIATE transactions let gunicorn threads and the worker cluster
    # write concurrently without "database is locked" errors.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            # mmap: pages are read from the kernel's page cache, shared by every process and
            # thread, instead of being copied into each connection's private cache (each gunicorn
            # thread has a connection of its own: that copying was most of the memory growth under
            # load; issue 15).
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA mmap_size=268435456;",
        }
    )
    # DRF imports django.contrib.postgres, and with it psycopg, libpq and Kerberos (about 9 MiB in
    # every process tree), whenever psycopg is installed; on SQLite nothing needs them, and DRF
    # takes an ImportError here as "no PostgreSQL fields".
    sys.modules.setdefault("django.contrib.postgres.fields", None)  # type: ignore[arg-type]
# Persistent connections: opening one per request costs more than a whole manifest GET.
DATABASES["default"].setdefault("CONN_MAX_AGE", 600)
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
if DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql"):
    # A database host that is gone: fail within seconds (503), not after the kernel's TCP timeout.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user row; anonymous access is decided by visibility
GUARDIAN_RAISE_403 = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# -- sign-in throttling (accounts/throttling.py): failures per account and per client address --------
AUTH_FAILURE_LIMIT_ACCOUNT = env.int("AUTH_FAILURE_LIMIT_ACCOUNT", default=5)
AUTH_FAILURE_LIMIT_CLIENT = env.int("AUTH_FAILURE_LIMIT_CLIENT", default=30)
AUTH_FAILURE_WINDOW_SECONDS = env.int("AUTH_FAILURE_WINDOW_SECONDS", default=900)
AUTH_LOCK_SECONDS = env.int("AUTH_LOCK_SECONDS", default=300)
AUTH_LOCK_MAX_SECONDS = env.int("AUTH_LOCK_MAX_SECONDS", default=3600)
# -- end sign-in throttling --------------------------------------------------------------------------
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "web:dashboard"
LOGOUT_REDIRECT_URL = "accounts:login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "registry_policies" / "web" / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
# -- HTTPS (edge-cases) ------------------------------------------------------------------------------
# Served under an https public URL, the session and CSRF cookies never travel over plain HTTP.
_PUBLIC_HTTPS = REGISTRY_PUBLIC_URL.lower().startswith("https://")
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=_PUBLIC_HTTPS)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=_PUBLIC_HTTPS)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)  # sent on HTTPS requests only
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto (and strips it from clients).
if env.bool("TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# -- end HTTPS ----------------------------------------------------------------------------------------
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# Blob uploads are streamed from wsgi.input by the registry views; these limits
# only bound what Django itself reads into memory for forms and JSON.
DATA_UPLOAD_MAX_MEMORY_SIZE = 8 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.PersonalAccessTokenAuthentication",
        "accounts.authentication.BasicPasswordOrTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "registry_policies.api.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "registry_policies.api.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "registry_policies API",
    "DESCRIPTION": "Repositories, permissions, tokens and policies of the registry_policies container registry.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {  # fields named `role` with different choice sets
        "OrganizationRoleEnum": "registry_policies.tenancy.models.OrganizationMembership.Role",
        "RepositoryRoleEnum": ["read", "write", "admin"],
        "NamespaceRoleEnum": ["read", "write", "admin", "manage_policies"],
    },
}

Q_CLUSTER = {
    "name": "registry_policies",
    "orm": "default",
    "workers": env.int("Q_WORKERS", default=1),  # issue 15: one per small machine; see README "Sizing"
    "timeout": 600,
    "retry": 720,
    "max_attempts": 3,
    "catch_up": False,
    "ack_failures": True,
    "save_limit": 1000,
    "sync": env.bool("Q_SYNC", default=False),
    "poll": env.float("Q_POLL", default=0.05),
    "log_level": "INFO",
}
# --- scale-out (nodes): with REDIS_URL, django-q2 uses its Redis broker (blocking pop, no polling);
# the database stays the truth (rows + heartbeats + the sweep of core/sweep.py), see README.
if REDIS_URL:
    Q_CLUSTER.pop("orm")
    Q_CLUSTER["redis"] = REDIS_URL
    # the Redis cache below, but a Redis outage is a cache miss, not a 500 (core/cache.py)
    REDIS_CACHE_BACKEND = "registry_policies.core.cache.TolerantRedisCache"
# --- end scale-out (nodes)

if REDIS_URL:
    CACHES = {"default": {"BACKEND": REDIS_CACHE_BACKEND, "LOCATION": REDIS_URL,
                          "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2}}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "console": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "registry_policies.core.logging.JsonFormatter"},
    },
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "json" if LOG_FORMAT == "json" else "console"}
    },
    "root": {"handlers": ["stderr"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- slow clients and early answers (registry_policies/core/gunicorn_worker.py, distribution/upload_slots.py)
HTTP_HEADER_TIMEOUT_SECONDS = env.float("HTTP_HEADER_TIMEOUT_SECONDS", default=10.0)
HTTP_BODY_READ_TIMEOUT_SECONDS = env.float("HTTP_BODY_READ_TIMEOUT_SECONDS", default=30.0)
EARLY_RESPONSE_DRAIN_BYTES = env.int("EARLY_RESPONSE_DRAIN_BYTES", default=16 * 1024 * 1024)
UPLOADS_PER_ACCOUNT = env.int("UPLOADS_PER_ACCOUNT", default=8)
# --- end slow clients
