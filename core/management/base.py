"""The base of every command of ours: an error the code below raises for a person to read
(a ProjectError) is printed as its one line, `error: ...`, as argparse and manage.py print
theirs, and the command exits with that error's status (1: failed or differs; 2: input that
cannot be used as given). Called from code (`call_command`), it raises CommandError instead,
with the same message and status."""

import sys

from django.core.management.base import BaseCommand, CommandError

from core.errors import ProjectError


class ProjectCommand(BaseCommand):
    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except ProjectError as error:
            failure = CommandError(str(error), returncode=error.exit_status)
        except CommandError as error:
            failure = error
        if not self._called_from_command_line or options.get("traceback"):
            raise failure
        self.stderr.write(f"error: {failure}")
        sys.exit(failure.returncode)
