"""One vocabulary for every command (docs/commands.md has the table).

- Ranges are checked as the options are parsed (`at_least`, `positive`, `between`): a bad value
  is a usage error, exit status 2, before anything runs, as argparse's own are.
- A usage error found after parsing (two options that do not go together) is `usage_error`,
  also exit status 2. "Differs from the source" is exit status 1; Ctrl-C, 130.
- A place (a folder, or s3://BUCKET/PREFIX) is parsed here, once (`place`, `file_place`):
  below the commands it is a Location, never a string to parse again.
- An old spelling keeps working for one release (`renamed`), with a line saying what replaces it.
"""

import argparse
import re
import sys
from collections.abc import Callable

from django.core.management.base import CommandError

from core.errors import ProjectError
from core.lake.store import TableFormat
from core.storage import Location, file_at, location

USAGE = 2  # the exit status of a usage error, as argparse gives


def usage_error(message: str) -> CommandError:
    return CommandError(message, returncode=USAGE)


def at_least(minimum: float, kind: type = int) -> Callable[[str], float]:
    def parse(text: str):
        value = kind(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in "invalid int value"
    return parse


def positive(kind: type = float) -> Callable[[str], float]:
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def between(low: float, high: float, kind: type = float) -> Callable[[str], float]:
    def parse(text: str):
        value = kind(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, not {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


class Renamed(argparse.Action):
    """An option's old spelling: it sets the new one's value, and says it is going."""

    def __init__(self, option_strings, dest, *, new: str, **kwargs):
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        sys.stderr.write(
            f"warning: {option_string} is now {self.new}; the old spelling goes in the next "
            "release\n"
        )
        flag = self.nargs in (0, "?") and not values
        setattr(namespace, self.dest, self.const if flag else values)


def renamed(parser, old: str, new: str, **kwargs) -> None:
    """Accept `old` as a deprecated spelling of `new` (same destination, same type)."""
    dest = new.lstrip("-").replace("-", "_")
    parser.add_argument(old, dest=dest, action=Renamed, new=new, help=argparse.SUPPRESS, **kwargs)


def place(text: str) -> Location:
    """A folder or s3://BUCKET/PREFIX as a Location; a malformed URL is a usage error."""
    try:
        return location(text)
    except ProjectError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def file_place(text: str) -> tuple[Location, str]:
    """A file's folder (or S3 prefix) and name, e.g. cdc/manifest.json; a usage error if it
    names a folder or a malformed URL."""
    try:
        return file_at(text)
    except ProjectError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


place.__name__ = "place"  # argparse says "invalid place value" for anything else
file_place.__name__ = "file"


def table_format(text: str) -> TableFormat:
    """--table-format's value, as the enum the lake takes."""
    try:
        return TableFormat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"choose from {', '.join(TableFormat)}, not {text!r}"
        ) from None


def identifier(text: str) -> str:
    """A name SQL takes unquoted in every dialect we write (a catalog's, say)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text):
        raise argparse.ArgumentTypeError(
            f"a name of letters, digits and _ (not starting with a digit), not {text!r}"
        )
    return text


TABLE_FORMATS = "{" + ",".join(TableFormat) + "}"  # how --help shows the choices
