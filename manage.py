#!/usr/bin/env python
"""Django's command-line utility, with one line instead of a traceback when the database is down."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lakehouse.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line
    from django.db.utils import OperationalError

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as error:
        sys.exit(f"error: {error}")
    except OperationalError:
        from django.conf import settings

        from lakehouse import localdb

        message = localdb.not_running_message() if settings.USES_LOCAL_SERVER else None
        if message is None:
            raise
        sys.exit(f"error: {message}")


if __name__ == "__main__":
    main()
