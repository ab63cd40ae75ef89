"""Settings for the chatbot backend.

Everything that differs between machines comes from the environment (a ``.env``
file in the project folder is loaded when present; real environment variables
win). ``.env.example`` documents every variable.
"""

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import dj_database_url
from dotenv import load_dotenv

from config import env

BASE_DIR = Path(__file__).resolve().parent.parent
if env.get_bool("DJANGO_READ_DOTENV", default=True):  # the test settings say False
    load_dotenv(BASE_DIR / ".env", override=False)

# --- Core -------------------------------------------------------------------

DEBUG = env.get_bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.get_secret_key("DJANGO_SECRET_KEY")
# Fernet keys for encrypted columns, newest first; separate from SECRET_KEY so
# either can be rotated without the other.
ENCRYPTION_KEYS = env.get_fernet_keys("ENCRYPTION_KEY")

ALLOWED_HOSTS = env.get_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.get_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "corsheaders",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "core",
    "realtime",
    "users",
    "outbox",
    "usage",
    "notifications",
    "chat_history",
    "documents",
    "sharing",
    "dashboard",
]

MIDDLEWARE = [
    "config.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"
AUTH_USER_MODEL = "users.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

# --- Database ---------------------------------------------------------------
# DATABASE_URL wins; otherwise the seed's POSTGRES_* variables; otherwise SQLite
# in the project folder, so a fresh checkout runs with no services at all.


SQLITE_OPTIONS = {
    # WAL lets readers run beside the single writer; IMMEDIATE takes the write
    # lock at BEGIN so concurrent writers queue instead of failing.
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
}


def _database() -> dict[str, Any]:
    url = env.get_str("DATABASE_URL")
    if not url and env.get_str("POSTGRES_DB"):
        url = "postgres://{user}:{password}@{host}:{port}/{db}".format(
            user=env.get_str("POSTGRES_USER", "postgres"),
            password=env.get_str("POSTGRES_PASSWORD"),
            host=env.get_str("POSTGRES_HOST", "localhost"),
            port=env.get_str("POSTGRES_PORT", "5432"),
            db=env.get_str("POSTGRES_DB"),
        )
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR / "db.sqlite3",
            "OPTIONS": SQLITE_OPTIONS,
        }
    database: dict[str, Any] = dict(dj_database_url.parse(url))
    if database["ENGINE"] == "django.db.backends.sqlite3":
        return {**database, "OPTIONS": SQLITE_OPTIONS}
    if database["ENGINE"] != "django.db.backends.postgresql":
        env.fail("DATABASE_URL", "must be a postgres:// or sqlite:/// URL.")
    # A connection attempt to a server that does not answer gives up after this
    # many seconds (libpq's connect_timeout; 2 is its minimum).
    database.setdefault("OPTIONS", {})["connect_timeout"] = env.get_int(
        "DB_CONNECT_TIMEOUT", 3, minimum=2
    )
    if env.get_bool("DB_POOL", default=True):
        # psycopg 3's pool, managed by Django: connections are reused across
        # requests in the process; CONN_MAX_AGE must stay 0 with a pool.
        database["CONN_MAX_AGE"] = 0
        # With the pool, Django passes ConnectionPool.check_connection as the
        # pool's ``check``: a connection broken while idle (the server restarted)
        # is discarded when handed out, never given to a request.
        database["CONN_HEALTH_CHECKS"] = True
        database["OPTIONS"]["pool"] = {
            "min_size": env.get_int("DB_POOL_MIN_SIZE", 2, minimum=0),
            "max_size": env.get_int("DB_POOL_MAX_SIZE", 10, minimum=1),
            # How long a request waits for a connection: with the database down,
            # it answers 503 database_unavailable after this many seconds.
            "timeout": env.get_int("DB_POOL_TIMEOUT", 3, minimum=1),
            # How long the pool retries a failed connection in the background,
            # with growing pauses (1 s, 2 s, ...), before leaving it to the next
            # request. psycopg's default (5 min) let those pauses grow past 30 s
            # during an outage, so the pool came back long after the database.
            "reconnect_timeout": env.get_int("DB_POOL_RECONNECT_TIMEOUT", 1, minimum=0),
        }
    else:
        database["CONN_MAX_AGE"] = env.get_int("DB_CONN_MAX_AGE", 60)
        database["CONN_HEALTH_CHECKS"] = True
    return database


DATABASES = {"default": _database()}

# --- Cache (throttling, rate limits) ----------------------------------------
REDIS_URL = env.get_str("REDIS_URL")
# Every key this app writes to Redis (cache, channel layer, presence) starts
# with it, so several deployments (or a test run) can share one Redis database.
REDIS_KEY_PREFIX = env.get_str("REDIS_KEY_PREFIX", "chatbot")
# Connects and reads of the cache give up after this many milliseconds: with
# Redis down or hung, a throttle lets the request through (core.throttles)
# after at most this long, instead of the request failing or waiting.
REDIS_CACHE_TIMEOUT = env.get_int("REDIS_CACHE_TIMEOUT_MS", 500, minimum=1) / 1000
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": REDIS_KEY_PREFIX,
            "OPTIONS": {
                "socket_connect_timeout": REDIS_CACHE_TIMEOUT,
                "socket_timeout": REDIS_CACHE_TIMEOUT,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Channels (WebSocket events) ----------------------------------------------
# In-process by default; with REDIS_URL every server process shares one layer,
# so an event published by one process reaches sockets held by another.
#
# Each socket waits for its next event with a blocking read that Redis answers
# after channels-redis's ``RedisChannelLayer.brpop_timeout`` (5 s) even when
# nothing happened. redis-py's default read timeout is 5 s too, so the read
# timed out first, the consumer died and uvicorn dropped idle sockets every
# 5-25 s. The read timeout must outlast that wait; a Redis that stops
# answering is still noticed after it. Connects stay short, TCP keepalive
# finds a peer that vanished, and a connection that broke while idle (Redis
# restarted) is reopened once instead of failing the command.
CHANNEL_LAYER_BLOCKING_READ = 5  # channels_redis RedisChannelLayer.brpop_timeout
if REDIS_URL:
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError

    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_connect_timeout": 2,
                        "socket_timeout": CHANNEL_LAYER_BLOCKING_READ + 5,
                        "socket_keepalive": True,
                        "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
                    }
                ],
                "prefix": f"{REDIS_KEY_PREFIX}:asgi",
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# Publishing an event from a write (realtime.publish) waits at most this long
# for the layer; after a failure the layer is skipped for the back-off, so a
# down or hung Redis costs one write per back-off a short wait, not every write.
REALTIME_PUBLISH_TIMEOUT = env.get_int("REALTIME_PUBLISH_TIMEOUT_MS", 1000, minimum=1) / 1000
REALTIME_PUBLISH_BACKOFF = env.get_int("REALTIME_PUBLISH_BACKOFF_SECONDS", 5, minimum=0)
# A shared session's members hear of its list item (unread counts, last
# message) at most once per this window per session (realtime.publish).
REALTIME_COALESCE_SECONDS = env.get_int("REALTIME_COALESCE_MS", 1000, minimum=0) / 1000

# How long a WebSocket ticket (POST /api/users/ws-ticket/, for ?ticket=) stays
# valid; it opens one socket, once.
WS_TICKET_SECONDS = env.get_int("WS_TICKET_SECONDS", 30, minimum=1)
# An open socket closes at once when its credential is revoked (an event); in
# case that event was lost, each socket also rechecks its credential this often.
WS_RECHECK_SECONDS = env.get_int("WS_RECHECK_SECONDS", 60, minimum=1)

# --- Passwords --------------------------------------------------------------
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    # Kept so hashes made before Argon2 still verify (and upgrade on login).
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- I18N, static and media ---------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"  # API timestamps are UTC ("...Z"); see chat_history.serializers.iso_datetime
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.get_str("DJANGO_MEDIA_ROOT") or BASE_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- REST framework -----------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Service tokens carry a recognisable prefix, so they are tried first and
        # anything else falls through to JWT.
        "users.authentication.ServiceTokenAuthentication",
        # simplejwt's JWTAuthentication, loading the profile in the same query.
        "users.authentication.UserJWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["core.renderers.JSONRenderer"],
    # JSON bodies only (the upload route has its own multipart parser): form
    # encodings would bring their own conversions of every field.
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "EXCEPTION_HANDLER": "config.exceptions.exception_handler",
    # OPTIONS describes a route without DRF's serializer walk (the shapes are in /api/schema/).
    "DEFAULT_METADATA_CLASS": "core.metadata.Metadata",
    "DEFAULT_SCHEMA_CLASS": "core.schema.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        "login_client": env.get_str("THROTTLE_LOGIN_CLIENT", "20/min"),
        "login_account": env.get_str("THROTTLE_LOGIN_ACCOUNT", "5/min"),
        "login_account_total": env.get_str("THROTTLE_LOGIN_ACCOUNT_TOTAL", "30/min"),
        "register": env.get_str("THROTTLE_REGISTER", "10/hour"),
        "account_export": env.get_str("THROTTLE_ACCOUNT_EXPORT", "5/hour"),
        "account_erase": env.get_str("THROTTLE_ACCOUNT_ERASE", "10/hour"),
        # Writes, per user (core.throttles.WriteThrottle), and per service token.
        "messages": env.get_str("THROTTLE_MESSAGES", "40/min"),
        "uploads": env.get_str("THROTTLE_UPLOADS", "60/hour"),
        # Adding members by email also says whether an account exists: kept slow.
        "members": env.get_str("THROTTLE_MEMBERS", "120/hour"),
        "service_members": env.get_str("THROTTLE_SERVICE_MEMBERS", "6000/hour"),
        "service_messages": env.get_str("THROTTLE_SERVICE_MESSAGES", "6000/min"),
        "service_stream": env.get_str("THROTTLE_SERVICE_STREAM", "60000/min"),
        # Usage records (POST /api/usage/), per service token.
        "service_usage": env.get_str("THROTTLE_SERVICE_USAGE", "6000/min"),
        # Public reads of shared conversations, per client address (sharing.throttles).
        "shared": env.get_str("THROTTLE_SHARED", "60/min"),
        # Marking notifications read and deleting them, per user.
        "notifications": env.get_str("THROTTLE_NOTIFICATIONS", "120/min"),
        # New provider keys, and key checks (each one calls the provider), per user.
        "provider_keys": env.get_str("THROTTLE_PROVIDER_KEYS", "30/hour"),
        "key_verify": env.get_str("THROTTLE_KEY_VERIFY", "20/hour"),
    },
    # Number of trusted proxies in front of the app; 0 ignores X-Forwarded-For,
    # which a client could otherwise forge to dodge per-client throttles.
    "NUM_PROXIES": env.get_int("DJANGO_NUM_PROXIES", 0),
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": env.get_seconds("JWT_ACCESS_LIFETIME_SECONDS", 60 * 60),
    "REFRESH_TOKEN_LIFETIME": env.get_seconds("JWT_REFRESH_LIFETIME_SECONDS", 7 * 24 * 3600),
    # Refresh tokens rotate in families kept by users.services (RefreshTokenRecord),
    # not by simplejwt's blacklist app, which stays installed only for the
    # migration that adopted its live tokens.
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": False,
    "UPDATE_LAST_LOGIN": False,
    # Tokens carry a digest of the password hash: changing the password makes
    # every access token issued before it invalid, not just the refresh tokens.
    "CHECK_REVOKE_TOKEN": True,
    # Deterministic: a refresh token signed again from its record is the same string.
    "ALGORITHM": "HS256",
    "SIGNING_KEY": env.get_str("JWT_SIGNING_KEY") or SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
}
# A refresh token presented again this soon after it was rotated (two tabs
# refreshing at once) gets the same successor; later, it is reuse and its whole
# family (session) is revoked. 0 turns the grace window off.
JWT_REFRESH_GRACE_SECONDS = env.get_int("JWT_REFRESH_GRACE_SECONDS", 10)

SPECTACULAR_SETTINGS = {
    "TITLE": "Chatbot backend API",
    "DESCRIPTION": (
        "Users, chat history and document metadata for an LLM/RAG chatbot. "
        "Frontends authenticate with JWT (Bearer access token); the AI service "
        "authenticates with a scoped service token (Bearer svc_...). Every error "
        "has the shape {detail, code, errors?}."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The document and the docs pages are public, whatever credentials a caller sends.
    "SERVE_AUTHENTICATION": [],
    # Swagger UI and ReDoc from the project's static files: no CDN, works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several choice sets share a field name ("role"): each gets its own name.
    "ENUM_NAME_OVERRIDES": {
        "MessageRoleEnum": "chat_history.models.Role",
        "MemberRoleEnum": "chat_history.models.MemberRole",
        "NewMemberRoleEnum": [("editor", "Editor"), ("viewer", "Viewer")],
        "HealthStatusEnum": ["ok", "unavailable"],
        "ProviderKeyStatusEnum": "users.serializers.KEY_STATUS_CHOICES",
        "ProviderKeyRevokeEnum": "users.serializers.KEY_REVOKE_CHOICES",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.schema.close_request_objects",
    ],
    "SCHEMA_PATH_PREFIX": r"/api/",
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "jwtAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            "serviceToken": {
                "type": "http",
                "scheme": "bearer",
                "description": "A service token (svc_...) created with "
                "`manage.py create_service_token`; scopes gate each route.",
            },
        }
    },
}

# A failed CSRF check (only the admin's forms use cookies) answers in JSON under /api/.
CSRF_FAILURE_VIEW = "config.views.csrf_failure"

# --- CORS -------------------------------------------------------------------
CORS_ALLOWED_ORIGINS = env.get_list("CORS_ALLOWED_ORIGINS")
CORS_ALLOWED_ORIGIN_REGEXES = env.get_list("CORS_ALLOWED_ORIGIN_REGEXES")
CORS_EXPOSE_HEADERS = ["X-Request-ID", "Retry-After"]
CORS_ALLOW_HEADERS = (
    "accept",
    "authorization",
    "content-type",
    "idempotency-key",
    "x-request-id",
)

# --- Security (production) --------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SECURE_SSL_REDIRECT = env.get_bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    # Load balancers probe health over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^api/health/$"]
    SECURE_HSTS_SECONDS = env.get_int("DJANGO_SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.get_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env.get_bool("DJANGO_SECURE_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
if env.get_bool("DJANGO_BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Limits -----------------------------------------------------------------
# Request bodies other than file uploads; larger ones get a JSON 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.get_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2 * 1024 * 1024)
# How deeply client JSON (bodies and socket frames) may nest; deeper is a 400.
# Below 200, so that whatever is stored can always be rendered (orjson: 254).
JSON_MAX_DEPTH = env.get_int("JSON_MAX_DEPTH", 32, minimum=2)
if JSON_MAX_DEPTH > 200:
    env.fail("JSON_MAX_DEPTH", f"must be at most 200, got {JSON_MAX_DEPTH}.")

# --- Chat history -------------------------------------------------------------
CHAT_MESSAGE_MAX_LENGTH = env.get_int("CHAT_MESSAGE_MAX_LENGTH", 100_000, minimum=1)
CHAT_METADATA_MAX_BYTES = env.get_int("CHAT_METADATA_MAX_BYTES", 16 * 1024, minimum=2)
CHAT_HISTORY_DEFAULT_LIMIT = env.get_int("CHAT_HISTORY_DEFAULT_LIMIT", 100, minimum=1)
CHAT_HISTORY_MAX_LIMIT = env.get_int("CHAT_HISTORY_MAX_LIMIT", 500, minimum=1)
# Deleted sessions and messages stay in the trash this long; then
# `manage.py purge_trash` (run it from cron) removes them for good.
CHAT_TRASH_RETENTION_DAYS = env.get_int("CHAT_TRASH_RETENTION_DAYS", 30, minimum=0)
# Members a shared session may have, its owner included (seed 002: 100).
CHAT_SESSION_MAX_MEMBERS = env.get_int("CHAT_SESSION_MAX_MEMBERS", 100, minimum=1)
# Imports (POST /api/chat-history/import/): the largest file accepted; files up
# to CHAT_IMPORT_INLINE_MAX_SIZE are imported within the request, larger ones
# by a background job (a thread, and `manage.py process_imports` from cron to
# take up jobs whose process died: a lease of CHAT_IMPORT_LEASE_SECONDS).
CHAT_IMPORT_MAX_UPLOAD_SIZE = env.get_int(
    "CHAT_IMPORT_MAX_UPLOAD_SIZE", 50 * 1024 * 1024, minimum=1
)
CHAT_IMPORT_INLINE_MAX_SIZE = env.get_int("CHAT_IMPORT_INLINE_MAX_SIZE", 1024 * 1024, minimum=0)
CHAT_IMPORT_LEASE_SECONDS = env.get_int("CHAT_IMPORT_LEASE_SECONDS", 300, minimum=1)
CHAT_IMPORT_MAX_ATTEMPTS = env.get_int("CHAT_IMPORT_MAX_ATTEMPTS", 3, minimum=1)
# False leaves background jobs to `manage.py process_imports` alone.
CHAT_IMPORT_THREAD = env.get_bool("CHAT_IMPORT_THREAD", default=True)

# --- Notifications ------------------------------------------------------------
# Read notifications are kept this many days; then `manage.py prune_notifications`
# (run it from cron) deletes them. Unread ones stay.
NOTIFICATIONS_KEEP_DAYS = env.get_int("NOTIFICATIONS_KEEP_DAYS", 90, minimum=0)

# --- Events to the AI service: the outbox and RabbitMQ ----------------------------
# amqp://user:password@host:5672/vhost (the vhost "/" is %2F). Unset: no broker.
BROKER_URL = env.get_str("BROKER_URL")
# A durable topic exchange of every event (routing key = the event type), and a
# durable queue of document wake-ups ({document_id, event_id}) for workers.
BROKER_EVENTS_EXCHANGE = env.get_str("BROKER_EVENTS_EXCHANGE", "chatbot.events")
BROKER_DOCUMENT_QUEUE = env.get_str("BROKER_DOCUMENT_QUEUE", "chatbot.documents")
# Write domain events to the outbox (one INSERT in each change's transaction),
# for `manage.py relay_events` to deliver. Default: on exactly when BROKER_URL
# is set, so a plain `make run` writes nothing nobody would deliver.
OUTBOX_ENABLED = env.get_bool("OUTBOX_ENABLED", default=bool(BROKER_URL))
# The relay: events per round (one transaction), and the wait when idle.
OUTBOX_BATCH_SIZE = env.get_int("OUTBOX_BATCH_SIZE", 100, minimum=1)
OUTBOX_RELAY_INTERVAL_MS = env.get_int("OUTBOX_RELAY_INTERVAL_MS", 500, minimum=1)
# A failed delivery is retried after base * 2^(attempts-1) seconds, capped, with jitter.
OUTBOX_RETRY_BASE_SECONDS = env.get_int("OUTBOX_RETRY_BASE_SECONDS", 1, minimum=0)
OUTBOX_RETRY_MAX_SECONDS = env.get_int("OUTBOX_RETRY_MAX_SECONDS", 60, minimum=0)
# Delivered events are deleted by the relay after this many days.
OUTBOX_KEEP_DAYS = env.get_int("OUTBOX_KEEP_DAYS", 7, minimum=0)
# /api/health/'s outbox check says "lagging" when the oldest pending event is
# older than this (informational: never a 503). 0 = never.
OUTBOX_MAX_LAG_SECONDS = env.get_int("OUTBOX_MAX_LAG_SECONDS", 0, minimum=0)

# --- Provider keys ------------------------------------------------------------
# The endpoint of each provider whose keys name none (Azure and OpenAI-compatible
# keys carry their own base URL); the AI service gets it with the key, and a
# key check (POST /api/users/keys/<id>/verify/) calls it.
PROVIDER_BASE_URLS = {
    "openai": env.get_str("PROVIDER_OPENAI_BASE_URL", "https://api.openai.com/v1"),
    "anthropic": env.get_str("PROVIDER_ANTHROPIC_BASE_URL", "https://api.anthropic.com"),
    "google": env.get_str("PROVIDER_GOOGLE_BASE_URL", "https://generativelanguage.googleapis.com"),
}
# Seconds a key check waits for each step (connect, answer) before "unreachable".
PROVIDER_VERIFY_TIMEOUT = env.get_int("PROVIDER_VERIFY_TIMEOUT", 5, minimum=1)
# Whether a user's base URL may be http:// or reach private, loopback or
# link-local addresses (a self-hosted model on the LAN). Off: such URLs are
# refused, and a key check never connects to them (server-side request forgery).
PROVIDER_ALLOW_PRIVATE_URLS = env.get_bool("PROVIDER_ALLOW_PRIVATE_URLS", default=False)

# --- Usage and budgets ---------------------------------------------------------
# USD per million prompt and completion tokens, per model: what a recorded call
# costs when the AI service sends no cost (usage.pricing). A model name matches
# its own entry, else the longest entry it starts with followed by "-"
# (gpt-4o-2024-08-06 is gpt-4o). These defaults are the providers' published
# list prices for the standard tier as of 2025-08 (no batch, cache or long-context
# rates); they go stale, so operators override them: USAGE_PRICES_FILE names a
# JSON file {"<model>": {"prompt": "2.50", "completion": "10.00"}, ...} merged
# over these (null removes an entry). A model in neither is recorded at cost 0
# ("unpriced").
_USAGE_PRICE_DEFAULTS: dict[str, tuple[str, str]] = {
    # OpenAI
    "gpt-5": ("1.25", "10.00"),
    "gpt-5-mini": ("0.25", "2.00"),
    "gpt-5-nano": ("0.05", "0.40"),
    "gpt-4.1": ("2.00", "8.00"),
    "gpt-4.1-mini": ("0.40", "1.60"),
    "gpt-4.1-nano": ("0.10", "0.40"),
    "gpt-4o": ("2.50", "10.00"),
    "gpt-4o-mini": ("0.15", "0.60"),
    "o3": ("2.00", "8.00"),
    "o4-mini": ("1.10", "4.40"),
    # Anthropic
    "claude-opus-4-1": ("15.00", "75.00"),
    "claude-opus-4": ("15.00", "75.00"),
    "claude-sonnet-4-5": ("3.00", "15.00"),
    "claude-sonnet-4": ("3.00", "15.00"),
    "claude-3-7-sonnet": ("3.00", "15.00"),
    "claude-3-5-haiku": ("0.80", "4.00"),
    # Google
    "gemini-2.5-pro": ("1.25", "10.00"),
    "gemini-2.5-flash": ("0.30", "2.50"),
    "gemini-2.5-flash-lite": ("0.10", "0.40"),
    "gemini-2.0-flash": ("0.10", "0.40"),
}


def _usage_prices() -> dict[str, dict[str, Decimal]]:
    prices = {
        model: {"prompt": Decimal(prompt), "completion": Decimal(completion)}
        for model, (prompt, completion) in _USAGE_PRICE_DEFAULTS.items()
    }
    path = env.get_str("USAGE_PRICES_FILE")
    if not path:
        return prices
    try:
        overrides = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        env.fail("USAGE_PRICES_FILE", f"could not be read as JSON ({exc}).")
    if not isinstance(overrides, dict):
        env.fail("USAGE_PRICES_FILE", "must hold a JSON object of models.")
    for model, price in overrides.items():
        if price is None:
            prices.pop(model, None)
            continue
        try:
            prices[model] = {part: Decimal(str(price[part])) for part in ("prompt", "completion")}
        except (TypeError, KeyError, ArithmeticError):
            prices[model] = {}
        if len(prices[model]) != 2 or not all(
            value.is_finite() and value >= 0 for value in prices[model].values()
        ):
            env.fail(
                "USAGE_PRICES_FILE",
                f'{model!r} must be {{"prompt": <USD>, "completion": <USD>}}, '
                "non-negative numbers or decimal strings.",
            )
    return prices


USAGE_PRICES = _usage_prices()
# GET /api/usage/ and the key statistics: the range when none is asked, and the
# longest one may ask for (days, both ends included).
USAGE_DEFAULT_RANGE_DAYS = env.get_int("USAGE_DEFAULT_RANGE_DAYS", 30, minimum=1)
USAGE_MAX_RANGE_DAYS = env.get_int("USAGE_MAX_RANGE_DAYS", 366, minimum=1)

# --- Benchmarks ---------------------------------------------------------------
# Adds /api/bench/ceiling/ (a plain Django JSON view, no auth) for `make bench`
# to measure the framework ceiling. Never enable it in production.
BENCH_ENDPOINTS = env.get_bool("BENCH_ENDPOINTS", default=False)

# --- Documents ----------------------------------------------------------------
DOCUMENT_MAX_UPLOAD_SIZE = env.get_int("DOCUMENT_MAX_UPLOAD_SIZE", 20 * 1024 * 1024, minimum=1)
# What a DOCX may unpack to in total (from its zip directory); more is a zip bomb.
DOCUMENT_MAX_UNZIPPED_SIZE = env.get_int("DOCUMENT_MAX_UNZIPPED_SIZE", 200 * 1024 * 1024, minimum=1)
DOCUMENT_LEASE_SECONDS = env.get_int("DOCUMENT_LEASE_SECONDS", 600, minimum=1)
DOCUMENT_MAX_ATTEMPTS = env.get_int("DOCUMENT_MAX_ATTEMPTS", 3, minimum=1)
DOCUMENT_QDRANT_COLLECTION = env.get_str("DOCUMENT_QDRANT_COLLECTION", "documents")

# The largest body any route accepts (an upload plus multipart framing); under
# ASGI anything larger is refused before Django buffers it (config.asgi_limits).
REQUEST_MAX_BODY_SIZE = (
    max(DOCUMENT_MAX_UPLOAD_SIZE, CHAT_IMPORT_MAX_UPLOAD_SIZE, DATA_UPLOAD_MAX_MEMORY_SIZE)
    + 1024 * 1024
)

# --- Logging ----------------------------------------------------------------
LOG_LEVEL = env.get_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "config.middleware.RequestIdLogFilter"},
        # A share link's token is its path: never in a log line, Django's included.
        "no_secret_paths": {"()": "config.logfilters.NoSecretPaths"},
    },
    "formatters": {
        "default": {
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "default",
            "filters": ["request_id", "no_secret_paths"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Our request log replaces Django's per-request warnings. Both print the
        # path, which for a share link is its token.
        "django.request": {"level": "ERROR", "filters": ["no_secret_paths"]},
        "django.server": {"level": "WARNING", "filters": ["no_secret_paths"]},
        # pika narrates every connect and close at INFO; the relay logs its own.
        "pika": {"level": "WARNING"},
    },
}
