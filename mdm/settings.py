"""Settings for the MDM console, read from the environment (12-factor).

Defaults work on a developer machine (PostgreSQL and Redis on 127.0.0.1). Production is the safe default:
DEBUG is off unless ``DJANGO_DEBUG=1``, and then the secret key, the encryption keys and the allowed hosts
must come from the environment or the process refuses to start.
"""

from __future__ import annotations

import os
import re
import warnings
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from kombu import Exchange as _Exchange
from kombu import Queue as _Queue

from mdm import outbound as _outbound
from ops.logs import logging_config as _ops_logging_config

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)

# Development-only values: used solely when DEBUG is on, so a production process can never run with them.
_DEV_SECRET_KEY = "dev-only-insecure-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"  # noqa: S105
_DEV_ENCRYPTION_KEY = "ZGV2LW9ubHkta2V5LWRvLW5vdC11c2UtaW4tcHJvZCE="

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or (_DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off.")

# Comma-separated Fernet keys: the first encrypts, all decrypt (see mdm/fields.py for rotation).
MDM_ENCRYPTION_KEYS = env_list("MDM_ENCRYPTION_KEYS") or ([_DEV_ENCRYPTION_KEY] if DEBUG else [])
if not MDM_ENCRYPTION_KEYS:
    raise ImproperlyConfigured("MDM_ENCRYPTION_KEYS must be set when DJANGO_DEBUG is off.")

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "axes",
    "csp",
    "mdm",
    "ldap_sync",
    "chromeos",
    "ops",
]

MIDDLEWARE = [
    # /healthz and /readyz first: probes address the instance over plain HTTP (ops/health.py).
    "ops.health.HealthMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files straight from gunicorn, hashed names cached for ever, gzip served when asked (ops.md).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Outside every middleware that renders or changes a page: it rewrites their final HTML (mdm/display.py).
    "mdm.display.DisplaySafetyMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    # Non-breaking spaces inside « » on French pages (mdm/typography.py).
    "mdm.typography.FrenchTypographyMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "ldap_sync.middleware.EndRevokedSessionsMiddleware",
    "mdm.tenancy.TenantMiddleware",
    "ops.logs.RequestContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "mdm.jobs.BrokerNoticeMiddleware",
    "mdm.middleware.SessionTimeoutMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "mdm.middleware.EncryptionKeyErrorMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "mdm.urls"
WSGI_APPLICATION = "mdm.wsgi.application"

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
                "django.template.context_processors.i18n",
                "mdm.context_processors.console",
                "chromeos.context_processors.integration_status",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mdm"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "mdm"),
    }
}

AUTH_USER_MODEL = "mdm.User"
# The throttle comes first: a locked-out attempt reaches no other backend, so no bind to the directory (mdm/auth.py).
AUTHENTICATION_BACKENDS = [
    "mdm.auth.ThrottleBackend",
    "mdm.auth.LocalAccountBackend",
    "ldap_sync.backends.TenantLDAPBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# French first, English too. Message ids are French (the reference guide's words); locale/en translates them.
LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", _("Français")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("TIME_ZONE", "Europe/Paris")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
# Production: collectstatic writes hashed, gzip-compressed copies that whitenoise serves with far-future caching;
# development serves the sources as they are.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Vendor assets come from the npm registry at setup (package.json), never from a CDN at run time.
STATICFILES_DIRS = [BASE_DIR / "static"]
if DEBUG:
    # Development serves static files from the finders; whitenoise need not find a collected STATIC_ROOT.
    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
# Only the files the pages use (mdm/staticfiles.py): production collects, hashes and compresses each one.
VENDOR_STATIC_FILES = {
    "vendor/pico/pico.min.css": BASE_DIR / "node_modules" / "@picocss" / "pico" / "css" / "pico.min.css",
    "vendor/htmx/htmx.min.js": BASE_DIR / "node_modules" / "htmx.org" / "dist" / "htmx.min.js",
}
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "mdm.staticfiles.VendorFinder",
]

# --- Security: safe by default, relaxed only by DEBUG for local development. -----------------------------
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = 0 if DEBUG else int(os.environ.get("DJANGO_HSTS_SECONDS", str(60 * 60 * 24 * 365)))
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
# Preloading is a commitment for the whole domain that is slow to undo: only on request.
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
# check --deploy warns when preload is off; off is this deployment's deliberate default.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("DJANGO_BEHIND_TLS_PROXY"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# htmx sends the CSRF token from the page (hx-headers), never from the cookie: scripts need not read it.
CSRF_COOKIE_HTTPONLY = True

# Sessions: signed out after DJANGO_SESSION_IDLE_SECONDS without a request, and DJANGO_SESSION_MAX_AGE_SECONDS
# after signing in whatever the activity (mdm.middleware.SessionTimeoutMiddleware).
SESSION_IDLE_TIMEOUT = int(os.environ.get("DJANGO_SESSION_IDLE_SECONDS", str(2 * 60 * 60)))
SESSION_MAX_AGE = int(os.environ.get("DJANGO_SESSION_MAX_AGE_SECONDS", str(12 * 60 * 60)))
SESSION_COOKIE_AGE = SESSION_MAX_AGE

# Sign-in throttling (django-axes, see mdm/auth.py): per account and per client address, growing cool-off.
AXES_FAILURE_LIMIT = int(os.environ.get("MDM_SIGNIN_ACCOUNT_LIMIT", "5"))
MDM_SIGNIN_ADDRESS_LIMIT = int(os.environ.get("MDM_SIGNIN_ADDRESS_LIMIT", "30"))
MDM_SIGNIN_COOLOFF_BASE = timedelta(seconds=int(os.environ.get("MDM_SIGNIN_COOLOFF_SECONDS", "300")))
MDM_SIGNIN_COOLOFF_MAX = timedelta(seconds=int(os.environ.get("MDM_SIGNIN_COOLOFF_MAX_SECONDS", "86400")))
# Proxies in front of the console whose X-Forwarded-For is trusted (the client address is that many from the right).
MDM_TRUSTED_PROXY_COUNT = int(
    os.environ.get("DJANGO_TRUSTED_PROXY_COUNT", "1" if env_bool("DJANGO_BEHIND_TLS_PROXY") else "0")
)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_USERNAME_CALLABLE = "mdm.auth.throttle_key"
AXES_CLIENT_IP_CALLABLE = "mdm.auth.client_address"
AXES_COOLOFF_TIME = "mdm.auth.cool_off"
AXES_HANDLER = "mdm.auth.ThrottleHandler"
AXES_LOCKOUT_CALLABLE = "mdm.auth.lockout_response"
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_SENSITIVE_PARAMETERS: list[str] = []
AXES_VERBOSE = False

# Headers. No inline script or style anywhere (htmx's own indicator style is off: templates/base.html).
_GOOGLE_ACCOUNTS = "https://accounts.google.com"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        # "Autoriser Google" posts here, then is redirected to Google's consent page (the emulator's in tests).
        "form-action": [
            "'self'",
            _GOOGLE_ACCOUNTS,
            *(
                [f"http://{os.environ['GOOGLE_EMULATOR_HOST']}"]
                if os.environ.get("GOOGLE_EMULATOR_HOST")
                else []
            ),
        ],
    }
}
PERMISSIONS_POLICY: dict[str, list[str]] = {
    feature: []
    for feature in (
        "accelerometer", "autoplay", "camera", "display-capture", "encrypted-media", "fullscreen",
        "geolocation", "gyroscope", "magnetometer", "microphone", "midi", "payment", "picture-in-picture",
        "publickey-credentials-get", "screen-wake-lock", "sync-xhr", "usb", "xr-spatial-tracking",
    )
}  # fmt: skip

# --- Google ----------------------------------------------------------------------------------------------
GOOGLE_OAUTH_CLIENT_ID = os.environ.get(
    "GOOGLE_OAUTH_CLIENT_ID", "mdm-console-dev.apps.googleusercontent.com" if DEBUG else ""
)
GOOGLE_OAUTH_CLIENT_SECRET = os.environ.get("GOOGLE_OAUTH_CLIENT_SECRET", "dev-secret" if DEBUG else "")
# host:port of a server speaking Google's wire protocol over plain HTTP (Google's *_EMULATOR_HOST convention).
# Unset in production: the real Google endpoints are used.
GOOGLE_EMULATOR_HOST = os.environ.get("GOOGLE_EMULATOR_HOST", "")
# How long one HTTP exchange with Google may take before it counts as a timeout (a transient error, retried,
# except for calls that must not be sent twice: see chromeos/google/errors.py).
GOOGLE_HTTP_TIMEOUT_SECONDS = float(os.environ.get("GOOGLE_HTTP_TIMEOUT_SECONDS", "60"))
# The quota governor (chromeos/google/quota.py): every Google call of every worker waits for it, through Redis.
GOOGLE_QUOTA_ENABLED = env_bool("GOOGLE_QUOTA_ENABLED", True)
# Google's default is 2,400 queries per minute per user per project; stay under it.
GOOGLE_QUOTA_USER_PER_MINUTE = float(os.environ.get("GOOGLE_QUOTA_USER_PER_MINUTE", "2000"))
# The project's own per-minute quota as set in the Cloud console (every tenant together); 0: not governed.
GOOGLE_QUOTA_PROJECT_PER_MINUTE = float(os.environ.get("GOOGLE_QUOTA_PROJECT_PER_MINUTE", "0"))
# Calls in flight at once per Google Workspace account (429 rateLimitExceeded beyond Google's); 0: not governed.
GOOGLE_QUOTA_TENANT_CONCURRENCY = int(os.environ.get("GOOGLE_QUOTA_TENANT_CONCURRENCY", "8"))
GOOGLE_QUOTA_BURST_SECONDS = float(os.environ.get("GOOGLE_QUOTA_BURST_SECONDS", "5"))
GOOGLE_QUOTA_PENALTY_FACTOR = float(os.environ.get("GOOGLE_QUOTA_PENALTY_FACTOR", "0.5"))
GOOGLE_QUOTA_PENALTY_SECONDS = int(os.environ.get("GOOGLE_QUOTA_PENALTY_SECONDS", "60"))
GOOGLE_QUOTA_LEASE_SECONDS = float(os.environ.get("GOOGLE_QUOTA_LEASE_SECONDS", "90"))
GOOGLE_QUOTA_MAX_WAIT_SECONDS = float(os.environ.get("GOOGLE_QUOTA_MAX_WAIT_SECONDS", "600"))
# Empty: <CACHE_KEY_PREFIX>:google-quota.
GOOGLE_QUOTA_KEY_PREFIX = os.environ.get("GOOGLE_QUOTA_KEY_PREFIX", "")
# Public base URL of the console, used to build the exact OAuth redirect URI. Empty: taken from the request.
CONSOLE_BASE_URL = os.environ.get("CONSOLE_BASE_URL", "")

# --- Celery ------------------------------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
# A task is acknowledged only once it finished, and re-queued if its worker dies: syncs are idempotent.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Every task limit and retry countdown stays below the Redis visibility timeout, or Redis would hand the
# same unacknowledged task to a second worker while the first still runs it.
CELERY_BROKER_VISIBILITY_TIMEOUT = int(os.environ.get("CELERY_BROKER_VISIBILITY_TIMEOUT", str(2 * 60 * 60)))
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {"visibility_timeout": CELERY_BROKER_VISIBILITY_TIMEOUT}
# Several stacks sharing one Redis (a demo, parallel end-to-end runs) each get their own queues this way,
# so no worker takes another stack's tasks.
if os.environ.get("CELERY_BROKER_KEY_PREFIX"):
    CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = os.environ["CELERY_BROKER_KEY_PREFIX"]
CELERY_TASK_SOFT_TIME_LIMIT = 50 * 60
CELERY_TASK_TIME_LIMIT = 55 * 60
CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT = 30.0
# A Redis outage must not kill a running sync: it does not need the broker, its message stays unacked and a
# later redelivery finds the run finished (or the tenant's sync lock held) and does nothing.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
if max(CELERY_TASK_TIME_LIMIT, CELERY_TASK_SOFT_TIME_LIMIT) >= CELERY_BROKER_VISIBILITY_TIMEOUT:
    raise ImproperlyConfigured("Celery task time limits must stay below the broker visibility timeout.")
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Two queues. ChromeOS syncs go to their own (CHROMEOS_SYNC_QUEUE): a sync spends ~85% of its life waiting on
# Google, so it runs on many light slots (threads) while everything else runs on prefork processes
# (scripts/prod.sh sync-worker / worker; figures: docs/notes/milestone-2/pool.md). A worker started without -Q
# takes both queues, so a deployment that runs only `celery worker` still syncs.
CHROMEOS_SYNC_QUEUE = os.environ.get("CHROMEOS_SYNC_QUEUE", "chromeos-sync")
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = (
    _Queue("celery", _Exchange("celery"), routing_key="celery"),
    _Queue(CHROMEOS_SYNC_QUEUE, _Exchange(CHROMEOS_SYNC_QUEUE), routing_key=CHROMEOS_SYNC_QUEUE),
)
CELERY_TASK_ROUTES = {"chromeos.tasks.devices_sync_task": {"queue": CHROMEOS_SYNC_QUEUE}}
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "audit-purge-daily": {
        "task": "mdm.tasks.audit_purge_task",
        "schedule": crontab(hour=3, minute=17),
    },
    "ldap-sync-dispatch": {
        "task": "ldap_sync.tasks.ldap_sync_dispatch_task",
        "schedule": crontab(minute="*/5"),
    },
}
# ChromeOS sync: beat ticks the dispatcher every CHROMEOS_SYNC_DISPATCH_SECONDS; it starts the syncs that are
# due (each tenant every CHROMEOS_SYNC_INTERVAL_SECONDS, at its own offset in the cycle).
CHROMEOS_SYNC_INTERVAL_SECONDS = int(os.environ.get("CHROMEOS_SYNC_INTERVAL_SECONDS", "3600"))
CHROMEOS_SYNC_DISPATCH_SECONDS = int(os.environ.get("CHROMEOS_SYNC_DISPATCH_SECONDS", "60"))
CHROMEOS_SYNC_PAGE_SIZE = int(os.environ.get("CHROMEOS_SYNC_PAGE_SIZE", "300"))
# A tenant of CHROMEOS_SYNC_PARALLEL_MIN_DEVICES or more is listed by OU partitions in this many threads at once
# (chromeos/services/sync/partitions.py); 1: always in sequence. The quota governor still caps calls in flight.
CHROMEOS_SYNC_LISTING_THREADS = int(
    os.environ.get("CHROMEOS_SYNC_LISTING_THREADS", str(GOOGLE_QUOTA_TENANT_CONCURRENCY or 8))
)
CHROMEOS_SYNC_PARALLEL_MIN_DEVICES = int(os.environ.get("CHROMEOS_SYNC_PARALLEL_MIN_DEVICES", "10000"))
# Staged new or changed devices are merged while the listing waits on Google, or once this many are staged.
CHROMEOS_SYNC_MERGE_ROWS = int(os.environ.get("CHROMEOS_SYNC_MERGE_ROWS", "3000"))
# A sync still running after this many seconds stops at its next page or merge, failed, removing nothing (the
# threads pool of the sync worker does not enforce Celery's time limits: this cooperative deadline does). 0: none.
CHROMEOS_SYNC_MAX_SECONDS = float(os.environ.get("CHROMEOS_SYNC_MAX_SECONDS", "10800"))
# Batches merged on a thread (and connection) of their own while the run's thread stages the next pages.
CHROMEOS_SYNC_MERGE_THREAD = os.environ.get("CHROMEOS_SYNC_MERGE_THREAD", "1") != "0"
# How many merge threads (each a PostgreSQL connection) one run uses side by side, when CHROMEOS_SYNC_MERGE_THREAD.
CHROMEOS_SYNC_MERGE_THREADS = int(os.environ.get("CHROMEOS_SYNC_MERGE_THREADS", "2"))
# work_mem of a merge's transaction: the insert that fills the device search index's pending list (16 MB) merges it
# into the index, in batches of work_mem (chromeos/services/sync/merge.py).
CHROMEOS_SYNC_MERGE_WORK_MEM = os.environ.get("CHROMEOS_SYNC_MERGE_WORK_MEM", "64MB")
if not re.fullmatch(r"[1-9][0-9]*(kB|MB|GB)", CHROMEOS_SYNC_MERGE_WORK_MEM):
    raise ImproperlyConfigured(
        f"CHROMEOS_SYNC_MERGE_WORK_MEM={CHROMEOS_SYNC_MERGE_WORK_MEM!r}: a PostgreSQL memory size such as 64MB "
        "(a number and kB, MB or GB)."
    )
CELERY_BEAT_SCHEDULE["chromeos-sync-dispatch"] = {
    "task": "chromeos.tasks.sync_dispatch_task",
    "schedule": float(CHROMEOS_SYNC_DISPATCH_SECONDS),
    # A tick that waited longer than a tick is pointless: the next one does the same work.
    "options": {"expires": max(CHROMEOS_SYNC_DISPATCH_SECONDS - 5, 5)},
}
# Worker liveness (ops/worker.py): each worker's heartbeat row, written every this many seconds.
OPS_WORKER_HEARTBEAT_SECONDS = float(os.environ.get("OPS_WORKER_HEARTBEAT_SECONDS", "15"))
# A worker's cyclic garbage collector (ops/worker.py, at the worker's start): generation thresholds ("G0[,G1[,G2]]"),
# empty for Python's own (700,10,10). A sync allocates ~20,000 dicts and lists per page of 300 devices, freed by
# reference counting; at 700 the collector ran ~3,500 times during a 100,000-device sync, holding the GIL that the
# listing threads wait for ~3 s in all, up to 0.13 s at a time (issue 18).
OPS_WORKER_GC_THRESHOLD = os.environ.get("OPS_WORKER_GC_THRESHOLD", "50000,10,10")
if OPS_WORKER_GC_THRESHOLD and not re.fullmatch(r"[1-9][0-9]*(,[0-9]+){0,2}", OPS_WORKER_GC_THRESHOLD):
    raise ImproperlyConfigured(
        f"OPS_WORKER_GC_THRESHOLD={OPS_WORKER_GC_THRESHOLD!r}: up to three integers such as 50000,10,10 "
        "(gc.set_threshold), or empty for Python's own."
    )
# Alerts e-mailed to a tenant's admins (ops/alerts.py): after this many failed syncs in a row, and the others.
OPS_ALERT_SYNC_FAILURES = int(os.environ.get("OPS_ALERT_SYNC_FAILURES", "3"))
CELERY_BEAT_SCHEDULE["ops-alerts-scan"] = {"task": "ops.tasks.alerts_scan_task", "schedule": 300.0}
# Outgoing e-mail (alerts): Django's SMTP backend, configured from the environment.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "console-mdm@localhost")
# Development prints e-mails in the worker's log instead of looking for an SMTP server.
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
# Prometheus /metrics (ops/metrics.py): off in production unless a bearer token or scraper networks are set.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128" if DEBUG else "")
# Every job's life cycle (mdm/jobs.py): the outbox republished and dead workers' jobs settled every minute.
JOBS_REAP_SECONDS = int(os.environ.get("JOBS_REAP_SECONDS", "60"))
JOB_HEARTBEAT_TIMEOUT_SECONDS = int(os.environ.get("JOB_HEARTBEAT_TIMEOUT_SECONDS", "300"))
JOB_MAX_RESUMES = int(os.environ.get("JOB_MAX_RESUMES", "5"))
LDAP_SYNC_QUEUED_TIMEOUT_SECONDS = int(os.environ.get("LDAP_SYNC_QUEUED_TIMEOUT_SECONDS", "600"))
# A removal queued this long with no worker taking it (and nothing waiting in the outbox) is failed by the reaper.
REMOVAL_QUEUED_TIMEOUT_SECONDS = int(os.environ.get("REMOVAL_QUEUED_TIMEOUT_SECONDS", "600"))
# A queued ChromeOS sync no worker took after this long says so on its page (it is not failed: the reaper gives
# it up after CHROMEOS_SYNC_QUEUED_TIMEOUT_SECONDS).
CHROMEOS_SYNC_QUEUED_NOTICE_SECONDS = int(os.environ.get("CHROMEOS_SYNC_QUEUED_NOTICE_SECONDS", "120"))
CELERY_BEAT_SCHEDULE["jobs-reap"] = {
    "task": "mdm.tasks.jobs_reap_task",
    "schedule": float(JOBS_REAP_SECONDS),
    "options": {"expires": max(JOBS_REAP_SECONDS - 5, 5)},
}
AUDIT_RETENTION_DAYS = int(os.environ.get("AUDIT_RETENTION_DAYS", "400"))

# Connections opened for a tenant (LDAP) reach public addresses on LDAP ports only, unless allowed here
# (mdm/outbound.py); the console's own database and Redis stay refused whatever is allowed.
MDM_OUTBOUND_ALLOWED_NETWORKS = env_list("MDM_OUTBOUND_ALLOWED_NETWORKS")
MDM_OUTBOUND_ALLOWED_PORTS = env_list("MDM_OUTBOUND_ALLOWED_PORTS")
_outbound.parse_networks(MDM_OUTBOUND_ALLOWED_NETWORKS)  # a typo stops the process instead of refusing all
_outbound.parse_ports(MDM_OUTBOUND_ALLOWED_PORTS)

# JSON lines in production, text in development; request, tenant, user, run/job and task ids (ops/logs.py).
LOG_FORMAT = os.environ.get("LOG_FORMAT", "text" if DEBUG else "json")
LOGGING = _ops_logging_config(json_lines=LOG_FORMAT == "json", level=os.environ.get("LOG_LEVEL", "INFO"))
# django-axes logs every attempt at INFO; the audit trail records them already (mdm/auth.py).
LOGGING["loggers"]["axes"] = {"level": "WARNING"}

# Uploaded app packages. Production mounts persistent storage here (or sets STORAGES to an object store).
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "var" / "media"))
MEDIA_URL = "media/"
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# Largest app package accepted (mdm/uploads.py); an APK or a kiosk app rarely passes 100 MB.
APP_UPLOAD_MAX_BYTES = int(os.environ.get("APP_UPLOAD_MAX_MB", "100")) * 1024 * 1024
FILE_UPLOAD_HANDLERS = [
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "mdm.uploads.CappedTemporaryFileUploadHandler",
]

# Optional error tracking (ops/sentry.py): only with a DSN, secrets scrubbed before anything is sent.
SENTRY_DSN = os.environ.get("SENTRY_DSN", "")
if SENTRY_DSN:
    from ops import sentry as _sentry

    _sentry.init(SENTRY_DSN)
