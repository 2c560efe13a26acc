"""The base of every command of ours: an error the code below raises for a person to read
(a ProjectError) is printed as its one line, `error: ...`, as argparse and manage.py print
theirs, and the command exits with that error's status (1: failed or differs; 2: input that
cannot be used as given). Called from code (`call_command`), it raises CommandError instead,
with the same message and status."""

import sys

import psycopg2
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection

from core.errors import ProjectError
from core.source.sessions import lock_holders, waited_too_long


class ProjectCommand(BaseCommand):
    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except ProjectError as error:
            failure = CommandError(str(error), returncode=error.exit_status)
        except CommandError as error:
            failure = error
        except (DatabaseError, psycopg2.Error) as error:
            what = waited_too_long(error)
            if what is None:
                raise  # a statement's own error: a bug, or the server's, with its traceback
            failure = CommandError(too_long(what), returncode=1)
        if not self._called_from_command_line or options.get("traceback"):
            raise failure
        self.stderr.write(f"error: {failure}")
        sys.exit(failure.returncode)


def too_long(what: str) -> str:
    """One line for a statement that waited past lock_timeout or ran past statement_timeout;
    for a lock, who holds it (and so what to wait for, or end)."""
    if what == "statement":
        return "a statement ran past its statement_timeout; nothing was changed: try again"
    holders = lock_holders(connection.get_connection_params())
    held = f"; held by {holders[0]}" if holders else ""
    more = f" (and {len(holders) - 1} more)" if len(holders) > 1 else ""
    return (
        f"waited {settings.LOCK_TIMEOUT} for a lock that another session holds, and gave up "
        f"(lock_timeout); nothing was changed{held}{more}: run again once it is done, or end "
        "it (SELECT pg_terminate_backend(pid))"
    )
