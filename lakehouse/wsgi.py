import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lakehouse.settings")

application = get_wsgi_application()

from django.conf import settings  # noqa: E402 (settings are read once the application is set up)

from core.source.sessions import bound_statements  # noqa: E402

bound_statements(settings.WEB_STATEMENT_TIMEOUT)
