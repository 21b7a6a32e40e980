"""SecureChat settings: every knob is an environment variable with a safe default.

The helpers below fail loudly on a malformed value instead of guessing, so a typo in
production is a start-up error, not a silently insecure server.
"""

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise ImproperlyConfigured(f"Set the {name} environment variable.")
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    if raw.strip().lower() in _TRUE:
        return True
    if raw.strip().lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be one of 1/0/true/false, not {raw!r}.")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}.") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

# Local state that must never be committed: secret key, SQLite database, CA files, Redis.
VAR_DIR = Path(env_str("SECURECHAT_VAR_DIR", str(BASE_DIR / "var")))


def _local_secret(name: str) -> str:
    """Read, or create once with mode 0600, a development secret under VAR_DIR."""
    path = VAR_DIR / name
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


if os.environ.get("SECRET_KEY"):
    SECRET_KEY = os.environ["SECRET_KEY"]
elif DEBUG:
    SECRET_KEY = _local_secret("secret_key")
else:
    raise ImproperlyConfigured(
        "SECRET_KEY is required when DEBUG is off (set DEBUG=1 for development)."
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    # django.contrib.admin with every deletion and (de)activation audited (securechat/adminsite.py)
    "securechat.adminsite.SecureChatAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "securechat.apps.SecureChatConfig",
    "accounts",
    "keys",
    "chat",
    "web",
]

MIDDLEWARE = [
    # First, so that every response gets the policy: redirects, errors, static files.
    "web.csp.ContentSecurityPolicyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files straight after SecurityMiddleware, as WhiteNoise asks (web/staticfiles.py).
    "web.staticfiles.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "securechat.urls"
ASGI_APPLICATION = "securechat.asgi.application"

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

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"), conn_max_age=0
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the writer; IMMEDIATE avoids lock-upgrade deadlocks
    # when daphne's thread pool writes concurrently.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    # Kept only so that older hashes verify once and are upgraded to argon2id on login.
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env_int("PASSWORD_MIN_LENGTH", 10)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Login throttling (accounts.throttle), in the one authentication backend every password
# check goes through (site login, admin login, any later one): attempts allowed per
# (username, client IP) and per client IP within the cool-down window; above a looser limit
# per username across IPs, a growing delay instead of a lock (see accounts/throttle.py).
AUTHENTICATION_BACKENDS = ["accounts.backends.ThrottledModelBackend"]
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
LOGIN_IP_FAILURE_LIMIT = env_int("LOGIN_IP_FAILURE_LIMIT", 50)
LOGIN_COOLDOWN_SECONDS = env_int("LOGIN_COOLDOWN_SECONDS", 300)
LOGIN_USERNAME_SOFT_LIMIT = env_int("LOGIN_USERNAME_SOFT_LIMIT", 20)
LOGIN_USERNAME_WINDOW_SECONDS = env_int("LOGIN_USERNAME_WINDOW_SECONDS", 3600)
LOGIN_USERNAME_DELAY_SECONDS = env_int("LOGIN_USERNAME_DELAY_SECONDS", 2)
LOGIN_USERNAME_MAX_DELAY_SECONDS = env_int("LOGIN_USERNAME_MAX_DELAY_SECONDS", 60)
LOGIN_KNOWN_ADDRESS_DAYS = env_int("LOGIN_KNOWN_ADDRESS_DAYS", 30)
LOGIN_LOCKOUT_KEEP_DAYS = env_int("LOGIN_LOCKOUT_KEEP_DAYS", 30)

# PKI (keys app). The CA's private keys live encrypted (PKCS#8) under PKI_DIR; the
# passphrase comes from the environment, or in development from a generated local file.
PKI_DIR = Path(env_str("SECURECHAT_PKI_DIR", str(VAR_DIR / "pki")))


CA_PASSPHRASE = os.environ.get("SECURECHAT_CA_PASSPHRASE") or (
    _local_secret("ca_passphrase") if DEBUG else None
)
CERTIFICATE_VALIDITY_DAYS = env_int("CERTIFICATE_VALIDITY_DAYS", 365)
# The server signing key renews this many days before it expires, and the system check
# warns this early about it and the CA (keys.W001).
CERTIFICATE_RENEW_DAYS = env_int("CERTIFICATE_RENEW_DAYS", 30)
if not 0 <= CERTIFICATE_RENEW_DAYS < CERTIFICATE_VALIDITY_DAYS:
    # A window as long as the validity would make every fresh certificate due at once,
    # and the server would issue a new signing key for every key record it signs.
    raise ImproperlyConfigured(
        "CERTIFICATE_RENEW_DAYS must be at least 0 and less than CERTIFICATE_VALIDITY_DAYS."
    )
CA_VALIDITY_DAYS = env_int("CA_VALIDITY_DAYS", 3650)
POP_CHALLENGE_TTL_SECONDS = env_int("POP_CHALLENGE_TTL_SECONDS", 120)
POP_CHALLENGES_PER_USER = env_int("POP_CHALLENGES_PER_USER", 5)
API_REQUESTS_PER_MINUTE = env_int("API_REQUESTS_PER_MINUTE", 300)
KEY_BACKUP_MAX_BYTES = env_int("KEY_BACKUP_MAX_BYTES", 64 * 1024)

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "securechat",
    }
}

CHANNEL_LAYERS = {
    "default": {
        # The pub/sub layer: the core RedisChannelLayer silently drops messages under
        # load (docs/decisions.md). Neither is a record: the database is.
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [{"address": REDIS_URL, "max_connections": 1000}]},
    }
}

SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 14 * 24 * 3600)
CSRF_COOKIE_SAMESITE = "Lax"

# Production transport security; each can be turned off behind a TLS-terminating proxy
# that already does it, but the defaults follow DEBUG so production is safe by default.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# A load balancer probes /healthz over plain HTTP on the private side (securechat/health.py).
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Only for a `collectstatic` towards a CDN or proxy: daphne serves static files itself,
# from the apps' static directories (web/staticfiles.py), in development and production.
STATIC_ROOT = VAR_DIR / "static"
WHITENOISE_USE_FINDERS = True
# The build's file names carry a content hash ([name]-[hash] from frontend/build.mjs):
# cached for good. Everything else (site.css, admin) gets WHITENOISE_MAX_AGE (60 s).
WHITENOISE_IMMUTABLE_FILE_TEST = (
    rf"^/{STATIC_URL.strip('/')}/web/dist/[^/]+-[A-Z0-9]{{8}}\.(?:js|css)$"
)
# The browser client's build description (frontend/build.mjs writes it, web/bundle.py
# reads it).
FRONTEND_MANIFEST = Path(
    env_str(
        "FRONTEND_MANIFEST", str(BASE_DIR / "web" / "static" / "web" / "dist" / "manifest.json")
    )
)

# Content Security Policy (web/csp.py) on every response. Each directive can be replaced
# through CSP_<DIRECTIVE> (e.g. CSP_CONNECT_SRC="'self' wss://chat.example.org"); the chat
# page adds the hash of its import map to script-src. `manage.py check` warns (web.W002)
# if script-src is weakened.
_CSP_DEFAULTS = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}
CSP_DIRECTIVES = {
    name: env_str("CSP_" + name.upper().replace("-", "_"), value)
    for name, value in _CSP_DEFAULTS.items()
}
CSP_REPORT_URI = env_str("CSP_REPORT_URI", "/csp-report/")
CSP_REPORT_ONLY = env_bool("CSP_REPORT_ONLY", False)
CSP_REPORT_MAX_BYTES = env_int("CSP_REPORT_MAX_BYTES", 16 * 1024)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"one_line": {"()": "securechat.logfilters.OneLine"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "channels_redis.pubsub": {"filters": ["one_line"]},
    },
}

# Chat (docs/protocol.md): epochs, messages, WebSocket limits, presence.
# Bounded work per user (issue 15): what one account may make the server do.
CONVERSATIONS_PER_HOUR = env_int("CONVERSATIONS_PER_HOUR", 30)
MEMBERSHIPS_PER_USER = env_int("MEMBERSHIPS_PER_USER", 500)
CONVERSATION_LIST_PAGE = env_int("CONVERSATION_LIST_PAGE", 100)
BACKLOG_MAX_MESSAGES = env_int("BACKLOG_MAX_MESSAGES", 500)
EPOCH_MAX_MESSAGES = env_int("EPOCH_MAX_MESSAGES", 1000)
EPOCH_MAX_AGE_SECONDS = env_int("EPOCH_MAX_AGE_SECONDS", 24 * 3600)
EPOCH_GRACE_SECONDS = env_int("EPOCH_GRACE_SECONDS", 10)
MESSAGE_MAX_BYTES = env_int("MESSAGE_MAX_BYTES", 64 * 1024)
WS_MAX_FRAME_BYTES = env_int("WS_MAX_FRAME_BYTES", 256 * 1024)
WS_RATE_PER_SECOND = env_int("WS_RATE_PER_SECOND", 30)
WS_RATE_BURST = env_int("WS_RATE_BURST", 60)
WS_RATE_STRIKES = env_int("WS_RATE_STRIKES", 100)
# Per user: live sockets in all (presence counts them), and one frame budget per worker
# shared by all of the user's sockets on it.
WS_SOCKETS_PER_USER = env_int("WS_SOCKETS_PER_USER", 10)
WS_USER_RATE_PER_SECOND = env_int("WS_USER_RATE_PER_SECOND", 60)
WS_USER_RATE_BURST = env_int("WS_USER_RATE_BURST", 120)
# A socket re-reads its login session (logged out? password changed? user active?) before
# a request at most this often; 0 = before every request. The session.ended event closes
# it at once: this bounds what a lost event could leave open (chat/consumers.py).
WS_SESSION_CHECK_SECONDS = env_int("WS_SESSION_CHECK_SECONDS", 1)
# Delivery under faults (docs/reliability.md): how often each worker looks for unsent
# outbox events and probes its channel layer, how long a claimed event waits for the
# worker that claimed it, and how long sent events are kept.
OUTBOX_POLL_SECONDS = env_int("OUTBOX_POLL_SECONDS", 1)
OUTBOX_LEASE_SECONDS = env_int("OUTBOX_LEASE_SECONDS", 10)
OUTBOX_KEEP_SECONDS = env_int("OUTBOX_KEEP_SECONDS", 3600)
LAYER_PROBE_SECONDS = env_int("LAYER_PROBE_SECONDS", 1)
PRESENCE_HEARTBEAT_SECONDS = env_int("PRESENCE_HEARTBEAT_SECONDS", 15)
PRESENCE_TTL_SECONDS = env_int("PRESENCE_TTL_SECONDS", 45)
