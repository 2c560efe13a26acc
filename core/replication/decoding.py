"""test_decoding's output, parsed into changes whose values stay the text PostgreSQL printed.

A change line looks like
    table public.core_order: UPDATE: id[uuid]:'…' total[numeric]:12.50 cancelled_at[…]:null
With REPLICA IDENTITY FULL an UPDATE or DELETE also carries the old row:
    table public.core_event: UPDATE: old-key: id[uuid]:'…' … new-tuple: id[uuid]:'…' …
A large (TOASTed) value that an UPDATE left unchanged is printed as `unchanged-toast-datum`
in the new tuple: it is not in the WAL, only in the old row when the table logs it in full.
"""

import re
from dataclasses import dataclass

CHANGE = re.compile(r"table (?P<schema>[^.]+)\.(?P<table>[^:]+): (?P<op>INSERT|UPDATE|DELETE): ")
# One column, or the marker between the old and the new row. Groups: marker, name, the quoted
# value with its quotes (so that '' is an empty string, not "no quoted value"), the bare value.
# A quoted value is matched as an unrolled loop ('…''…'), which Python's re runs far faster
# than an alternation per character.
QUOTED = r"('[^']*(?:''[^']*)*')"
COLUMN = re.compile(r"(new-tuple: )|([^\s\[]+)\[[^\]]*\]:(?:" + QUOTED + r"|(\S+))")
# The values alone, for a row printed whole in column order (the hot path).
VALUES = re.compile(r"\[[^\]]*\]:(?:" + QUOTED + r"|(\S+))")
COMMIT = re.compile(r"COMMIT(?: (?P<xid>\d+))?(?: \(at (?P<at>[^)]+)\))?")
OPS = {"INSERT": "I", "UPDATE": "U", "DELETE": "D"}
UNCHANGED_TOAST = "unchanged-toast-datum"


class Unchanged:
    """A TOASTed value an UPDATE did not touch and the WAL does not carry."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED = Unchanged()


@dataclass
class Change:
    op: str  # I, U or D, as DMS writes it
    schema: str
    table: str
    values: dict[str, object]  # text, None for NULL, or UNCHANGED; a DELETE: the old row's
    old: dict[str, object] | None = None  # the old row (REPLICA IDENTITY FULL), if logged

    @property
    def unchanged_columns(self) -> list[str]:
        return [name for name, value in self.values.items() if value is UNCHANGED]


def value_of(quoted: str, bare: str) -> object:
    """A column's value from its quoted ('…' with '' escaped) or bare printed form."""
    if quoted:
        return quoted[1:-1].replace("''", "'") if "''" in quoted else quoted[1:-1]
    return None if bare == "null" else UNCHANGED if bare == UNCHANGED_TOAST else bare


def parse_values(text: str) -> tuple[dict[str, object], dict[str, object] | None]:
    """`name[type]:value …` (quoted with '' escaped, bare, or null), split at `new-tuple:` if
    the old row comes first. Returns (values, old values or None)."""
    first: dict[str, object] = {}
    current, old = first, None
    # findall, not finditer: tuples are cheaper than match objects, and this runs per change.
    for marker, name, quoted, bare in COLUMN.findall(text):
        if marker:
            old, current = first, {}
            continue
        current[name[1:-1] if name[0] == '"' else name] = value_of(quoted, bare)
    return current, old


def values_in_order(line: str) -> tuple[str, str, str, list[object]] | None:
    """(schema, table, op, values) of an INSERT or UPDATE that prints the whole new row and no
    old one, values in the order printed (the table's column order); None for anything else.
    The hot path of a capture: no dict per change."""
    match = CHANGE.match(line)
    if match is None or match["op"] == "DELETE":
        return None
    body = line[match.end() :]
    if body.startswith("old-key: "):
        return None
    values = [
        quoted[1:-1].replace("''", "'")
        if quoted
        else None
        if bare == "null"
        else UNCHANGED
        if bare == UNCHANGED_TOAST
        else bare
        for quoted, bare in VALUES.findall(body)
    ]
    return match["schema"], match["table"], OPS[match["op"]], values


def parse_change(line: str) -> Change | None:
    match = CHANGE.match(line)
    if match is None:
        return None
    body = line[match.end() :]
    if body.startswith("old-key: "):
        body = body[len("old-key: ") :]
    elif body.startswith("(no-tuple-data)"):
        body = ""
    values, old = parse_values(body)
    op = OPS[match["op"]]
    if op == "U" and old is not None:
        # The old row is whole only under REPLICA IDENTITY FULL; then it has what was left out.
        for name, value in values.items():
            if value is UNCHANGED and name in old and old[name] is not UNCHANGED:
                values[name] = old[name]
    return Change(op=op, schema=match["schema"], table=match["table"], values=values, old=old)


def commit_time(line: str) -> str | None:
    """The `at` timestamp of a COMMIT line (include-timestamp on), as PostgreSQL printed it."""
    match = COMMIT.match(line)
    return match["at"] if match else None
