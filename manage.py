#!/usr/bin/env python3
"""Django's command-line utility, with one line instead of a traceback when the project is not
set up yet, the database is down, or Ctrl-C interrupts a command (which also cancels the
statement it is running)."""

import os
import sys

INTERRUPTED = "interrupted (Ctrl-C): the work in progress was rolled back"


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lakehouse.settings")
    try:
        import psycopg2
        from django.core.exceptions import ImproperlyConfigured
        from django.core.management import execute_from_command_line
        from django.db.utils import OperationalError
    except ImportError:
        sys.exit(
            "error: the project's packages are not installed here: run `make up` first (it "
            "makes .venv), then `bin/manage COMMAND`"
        )

    from core.management.interrupt import cancelling_on_interrupt

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
    except (OperationalError, psycopg2.OperationalError) as error:
        cause = error.__cause__ if isinstance(error, OperationalError) else error
        if getattr(cause, "pgcode", None) is not None:
            raise  # an error of a statement, not of the connection: keep its traceback
        from django.conf import settings

        from devstack import localdb

        message = localdb.not_running_message() if settings.USES_LOCAL_SERVER else None
        if message is None:
            reason = (str(error).strip().splitlines() or ["no answer"])[0]
            where = "the project-local" if settings.USES_LOCAL_SERVER else "DATABASE_URL's"
            message = f"cannot connect to PostgreSQL ({reason}): is {where} server running?"
        sys.exit(f"error: {message}")


if __name__ == "__main__":
    main()
