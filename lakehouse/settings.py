"""Settings come from the environment (or a `.env` file); see `.env.example` for every variable."""

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

from devstack import engines, localdb, locals3

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# DJANGO_ENV_FILE points elsewhere (or at no file) when the project's .env must not apply.
environ.Env.read_env(os.environ.get("DJANGO_ENV_FILE", BASE_DIR / ".env"), overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set: put one in the environment or in .env "
            "(`make up` writes a .env for local use), or set DEBUG=true for development."
        )
    # Development only: a fresh key per process (sessions do not survive a restart).
    SECRET_KEY = get_random_secret_key()

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_extensions",
    "core",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "lakehouse.urls"

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

WSGI_APPLICATION = "lakehouse.wsgi.application"
ASGI_APPLICATION = "lakehouse.asgi.application"

# DATABASE_URL wins (docker compose, RDS/Aurora, any server); without it, the project-local
# server started by `make db`. Before that server first starts there is no URL yet: commands that
# need the database then fail, and manage.py turns that failure into a line saying how to start it.
DATABASE_URL = env.str("DATABASE_URL", default="") or localdb.connection_url()
USES_LOCAL_SERVER = not env.str("DATABASE_URL", default="")
DATABASES = {
    "default": env.db_url_config(DATABASE_URL or "postgres://lakehouse@127.0.0.1:1/lakehouse_poc")
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = 5
# No statement waits for ever on a lock another session holds (a reseed, an ALTER TABLE, a
# forgotten open transaction): past this it fails, and the command says so in one line,
# naming the holder. Long statements of our own (a COPY, an index build) are not affected.
LOCK_TIMEOUT = env.str("DATABASE_LOCK_TIMEOUT", default="5s")
DATABASES["default"]["OPTIONS"]["options"] = " ".join(
    part
    for part in (DATABASES["default"]["OPTIONS"].get("options"), f"-c lock_timeout={LOCK_TIMEOUT}")
    if part
)
# The web server's statements (the admin, the pipeline page) give up after this; commands'
# statements (a COPY of millions of rows, an index build) are not bounded. Set in wsgi/asgi.
WEB_STATEMENT_TIMEOUT = env.str("DATABASE_WEB_STATEMENT_TIMEOUT", default="30s")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The services a developer runs on this machine (devstack/), given to the app, which imports
# none of them: the S3 store that s3:// URLs reach when no AWS_* setting names another, the
# Spark runtime that `make engines` installs, and where the local admin's password is kept.
LOCAL_S3_STORE = locals3.local_store()
SPARK_RUNTIME = engines.spark_runtime
DEMO_ADMIN_PASSWORD_FILE = localdb.local_server().state_dir / "admin-password"

# The pipeline page (/admin/pipeline/): where the commands record the captures and warehouses
# they write, and any more to show (comma-separated; a warehouse as warehouse:URL).
LAKEHOUSE_STATE_DIR = env.path("LAKEHOUSE_STATE_DIR", default=BASE_DIR / ".lakehouse")
PIPELINE_LOCATIONS = env.list("PIPELINE_LOCATIONS", default=[])

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# Production hardening, on whenever DEBUG is off; each can be overridden from the environment
# (for example SECURE_SSL_REDIRECT=false behind a proxy that terminates TLS itself).
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"timed": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        "timed": {"class": "logging.StreamHandler", "formatter": "timed"},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="WARNING")},
    # The long-running commands (simulate, cdc_tail --follow) log their progress at INFO, with
    # the time, for a service manager's log; on a terminal they draw a live line instead.
    "loggers": {
        "lakehouse": {
            "handlers": ["timed"],
            "level": env.str("LAKEHOUSE_LOG_LEVEL", default="INFO"),
            "propagate": False,
        }
    },
}
