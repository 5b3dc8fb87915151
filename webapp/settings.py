"""Settings for EmoStudy, all read from the environment with safe development defaults.

Embedded default (nothing set): SQLite under var/, Celery over a filesystem broker under var/.
Real stack: DATABASE_URL (PostgreSQL) and REDIS_URL.
"""
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from webapp.secret_key import persisted_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False) if (BASE_DIR / ".env").exists() else None

# `make run` (manage.py run_embedded) serves with DEBUG off: it sets DEBUG=false, SECRET_KEY_FILE, ALLOWED_HOSTS
# and SECURE_COOKIES=false for its server and worker unless they are set (webapp.embedded). DEBUG=true turns
# Django's debug pages back on for developers.
DEBUG = env.bool("DEBUG", default=True)
_DEV_SECRET = "dev-only-insecure-secret-key-change-me"
SECRET_KEY = env("SECRET_KEY", default="")
if not SECRET_KEY and env("SECRET_KEY_FILE", default=""):
    SECRET_KEY = persisted_secret_key(Path(env("SECRET_KEY_FILE")))  # generated once, kept out of git (var/)
SECRET_KEY = SECRET_KEY or _DEV_SECRET
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
if not DEBUG and (SECRET_KEY == _DEV_SECRET or not ALLOWED_HOSTS):
    raise ImproperlyConfigured("With DEBUG off, set SECRET_KEY (or SECRET_KEY_FILE) and ALLOWED_HOSTS in the environment.")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "axes",
    "study",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",  # turns a locked-out login into a 429 page
    "webapp.middleware.DatabaseUnavailableMiddleware",  # a database restart costs a 503 + Retry-After, not a 500
]

ROOT_URLCONF = "webapp.urls"
WSGI_APPLICATION = "webapp.wsgi.application"

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
                "study.context_processors.site",
            ],
        },
    },
]

# The participants' vote and trial state run as prepared statements on PostgreSQL (study/rawsql.py); turn them off
# behind a connection pooler that cannot keep them (PgBouncer in transaction mode before 1.21).
RAW_SQL_PREPARED_STATEMENTS = env.bool("RAW_SQL_PREPARED_STATEMENTS", default=True)
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'emostudy.sqlite3'}")}
DATABASES["default"].setdefault("ATOMIC_REQUESTS", False)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the web server and the embedded worker share the file.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    # A restarted PostgreSQL costs no request an error: Django checks a kept connection before a request's first
    # query (the participants' hot paths do without the check's round trip: study.rawsql.on_kept_connection).
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", env.int("DB_CONNECT_TIMEOUT", default=15))
    if RAW_SQL_PREPARED_STATEMENTS:
        # psycopg prepares nothing while prepare_threshold is None (Django's default). A threshold never reached
        # prepares only the statements that ask (study/rawsql.py's cursor); Django's own cursors bind on the client
        # side and never prepare.
        DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", 2**31 - 1)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en"
# Languages of the participant pages (a study chooses one); translations live in locale/<code>/LC_MESSAGES.
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "study.staticfiles.PlotlyFinder",  # vendor/plotly.min.js from the installed plotly package (no CDN)
]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "study.staticfiles.HashedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Several machines (web replicas, GPU workers elsewhere): media on S3 or an S3-compatible store (MinIO, R2...)
# through django-storages (`pip install .[s3]`). Credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
# (or the machine's IAM role); workers copy checkpoints once into MODEL_CACHE_DIR to load them.
if env("S3_BUCKET", default=""):
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env("S3_BUCKET"),
            "endpoint_url": env("S3_ENDPOINT_URL", default=None),
            "region_name": env("S3_REGION", default=None),
            "location": env("S3_PREFIX", default="media"),
            "default_acl": None,  # private objects; served through the views or pre-signed URLs
            "querystring_auth": True,
            "querystring_expire": env.int("S3_URL_EXPIRE_SECONDS", default=3600),
            "file_overwrite": True,  # files are content-addressed: the same name is the same bytes
        },
    }
MODEL_CACHE_DIR = Path(env("MODEL_CACHE_DIR", default=str(VAR_DIR / "model-cache")))
# Uploads bigger than this (all files together) are stored and imported by a worker, with a progress page.
STIMULUS_INLINE_MAX_BYTES = env.int("STIMULUS_INLINE_MAX_BYTES", default=2 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=20 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# Researchers log in on the site's own pages (/accounts/login/); they need no is_staff (study.selectors.researchers).
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "study:researcher-study-list"
LOGOUT_REDIRECT_URL = "study:landing"
RESEARCHER_SIGNUP_OPEN = env.bool("RESEARCHER_SIGNUP_OPEN", default=False)  # else: invite links or add_researcher
RESEARCHER_INVITE_DAYS = env.int("RESEARCHER_INVITE_DAYS", default=7)
# Password-reset mail: printed on the console unless an SMTP server is configured (EMAIL_URL, e.g. smtp://...).
_email = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST, EMAIL_PORT = _email.get("EMAIL_HOST", ""), _email.get("EMAIL_PORT") or 25
EMAIL_HOST_USER, EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_USER", ""), _email.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS", False))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="EmoStudy <noreply@localhost>")

# Participant cookie: opaque token, httpOnly, SameSite.
PARTICIPANT_COOKIE_NAME = "emostudy_participant"
PARTICIPANT_COOKIE_AGE = 60 * 60 * 24 * 30
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"

# --- Production security, all from the environment (documented in deploy/production.env.example) ---------
# `manage.py check --deploy` is clean with that file's values (tests/webapp/test_deploy_check.py runs it).
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# Health probes come from the orchestrator over plain HTTP inside the network: never redirect them.
SECURE_REDIRECT_EXEMPT = [r"^healthz/$", r"^readyz/$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if env.bool("USE_X_FORWARDED_PROTO", default=False):
    # Behind a TLS-terminating proxy that sets this header (and strips it from clients).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy (django-csp 4): no inline scripts anywhere, no third-party origins (no CDN).
# Inline styles stay allowed: Plotly writes <style> elements and style attributes at run time.
_CSP_SELF = "'self'"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [_CSP_SELF],
        "script-src": [_CSP_SELF],
        "style-src": [_CSP_SELF, "'unsafe-inline'"],
        "img-src": [_CSP_SELF, "data:", "blob:"],
        "media-src": [_CSP_SELF, "blob:"],
        "connect-src": [_CSP_SELF],
        "font-src": [_CSP_SELF, "data:"],
        "object-src": ["'none'"],
        "base-uri": [_CSP_SELF],
        "form-action": [_CSP_SELF],
        "frame-ancestors": ["'none'"],
    },
}
if env.bool("CSP_REPORT_ONLY", default=False):
    CONTENT_SECURITY_POLICY_REPORT_ONLY, CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY, None

# Login throttling (django-axes) on every login that goes through django.contrib.auth.authenticate with a
# request: /api/token/, the admin login, the site's login page. Failures are counted per client address.
AUTHENTICATION_BACKENDS = [
    "webapp.auth.ThrottledLoginBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_TEMPLATE = "login_locked.html"
AXES_VERBOSE = False
# Behind N reverse proxies that append to X-Forwarded-For, set TRUSTED_PROXY_COUNT=N (0: use REMOTE_ADDR).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "webapp.auth.client_ip"

# Assignments not answered in this many seconds stop counting toward an image's quota.
ASSIGNMENT_EXPIRY_SECONDS = env.int("ASSIGNMENT_EXPIRY_SECONDS", default=30 * 60)
# Until a participant's first vote their sequence holds its places only this long: pressing Start without
# voting (say, a script) cannot make a study look full for half an hour.
ASSIGNMENT_HOLD_BEFORE_FIRST_VOTE_SECONDS = env.int("ASSIGNMENT_HOLD_BEFORE_FIRST_VOTE_SECONDS", default=180)
# The study link and consent pages reuse a "full or not" verdict this many seconds old (per web process; Start
# always counts afresh): many people opening a link at once do not each pay for the count. 0 counts every time.
STUDY_FULL_CHECK_SECONDS = env.float("STUDY_FULL_CHECK_SECONDS", default=2.0)
# New participants (consent + Start) per client address and study within the window; 0 turns the limit off.
# Generous on purpose: a lab may run many participants behind one address.
PARTICIPANT_STARTS_PER_CLIENT = env.int("PARTICIPANT_STARTS_PER_CLIENT", default=20)
PARTICIPANT_START_WINDOW_SECONDS = env.int("PARTICIPANT_START_WINDOW_SECONDS", default=10 * 60)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "EmoStudy API",
    "DESCRIPTION": "Studies, stimuli, votes, predictions and metrics.",
    "VERSION": "0.1.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Celery: Redis when REDIS_URL is set; otherwise a filesystem broker that needs no server.
REDIS_URL = env("REDIS_URL", default="")
CELERY_BROKER_DIR = VAR_DIR / "celery"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # An unacknowledged task (its worker died) is redelivered after this many seconds.
    # kombu sweeps for such messages every interval*throttle seconds (10*10 by default).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
        "unacked_restore_interval": env.int("CELERY_UNACKED_RESTORE_INTERVAL", default=10),
        "unacked_restore_throttle": env.int("CELERY_UNACKED_RESTORE_THROTTLE", default=10),
        "unacked_mutex_expire": env.int("CELERY_UNACKED_MUTEX_EXPIRE", default=300),  # a sweeper killed mid-sweep
        # A hung Redis must not hang the worker forever either (its long polls last 1 s, so well above that).
        "socket_timeout": env.float("CELERY_BROKER_SOCKET_TIMEOUT", default=10.0),
        "socket_connect_timeout": env.float("CELERY_BROKER_SOCKET_CONNECT_TIMEOUT", default=5.0),
        "socket_keepalive": True,
    }
    CELERY_RESULT_BACKEND = None
else:
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ROUTES = {"study.tasks.*": {"queue": "gpu"}}
CELERY_BROKER_CONNECTION_TIMEOUT = 3
# The web process talks to the broker with this socket timeout (seconds) and one retry: a hung Redis costs a
# request at most ~3 s, then a 503 (study/broker.py). /readyz bounds each of its checks by READYZ_TIMEOUT.
BROKER_WEB_TIMEOUT = env.float("BROKER_WEB_TIMEOUT", default=1.0)
READYZ_TIMEOUT = env.float("READYZ_TIMEOUT", default=1.0)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULE = {
    "purge-demo-uploads": {"task": "study.tasks.purge_demo_uploads", "schedule": 300.0},
}
# The public /demo/ page (study.services.demo): limits and how long results are kept.
DEMO_MAX_BYTES = env.int("DEMO_MAX_BYTES", default=10 * 1024 * 1024)
DEMO_MAX_PIXELS = env.int("DEMO_MAX_PIXELS", default=40_000_000)
DEMO_UPLOADS_PER_MINUTE = env.int("DEMO_UPLOADS_PER_MINUTE", default=10)
DEMO_RESULT_TTL = env.int("DEMO_RESULT_TTL", default=3600)

MODEL_DEVICE = env("MODEL_DEVICE", default="")  # "" = cuda if available, else cpu
PREDICT_BATCH_SIZE = env.int("PREDICT_BATCH_SIZE", default=32)
MAX_CHECKPOINT_BYTES = env.int("MAX_CHECKPOINT_BYTES", default=2 * 1024 ** 3)
DEMO_MODEL_PATH = Path(env("DEMO_MODEL_PATH", default=str(VAR_DIR / "models" / "demo.pt")))
BASELINE_MODEL_PATH = Path(env("BASELINE_MODEL_PATH", default=str(VAR_DIR / "models" / "fer_mini_xception.pt")))
VA_MODEL_PATH = Path(env("VA_MODEL_PATH", default=str(VAR_DIR / "models" / "va_synthetic.pt")))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
