#!/usr/bin/env python
"""Django's command-line utility, with one line instead of a traceback when the database is down
or Ctrl-C interrupts a command (which also cancels the statement it is running)."""

import os
import sys

INTERRUPTED = "interrupted (Ctrl-C): the work in progress was rolled back"


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lakehouse.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line
    from django.db.utils import OperationalError

    from lakehouse.interrupt import cancelling_on_interrupt

    try:
        with cancelling_on_interrupt() as interruption:
            try:
                execute_from_command_line(sys.argv)
            except BaseException as error:
                # A statement cancelled by Ctrl-C fails with an error of its own, which a
                # command or psycopg2 (reading COPY data) may raise in KeyboardInterrupt's place.
                succeeded = isinstance(error, SystemExit) and error.code in (0, None)
                if interruption.seen and not succeeded:
                    raise KeyboardInterrupt from error
                raise
    except KeyboardInterrupt:
        sys.stderr.write(INTERRUPTED + "\n")
        sys.exit(130)  # the shell's code for a command ended by SIGINT
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
