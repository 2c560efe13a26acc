import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lakehouse.settings")

application = get_asgi_application()

from django.conf import settings  # noqa: E402 (settings are read once the application is set up)

from core.source.sessions import bound_statements  # noqa: E402

bound_statements(settings.WEB_STATEMENT_TIMEOUT)
