"""test_decoding's text output, parsed into transactions of typed changes.

A change line looks like
    table public.core_order: UPDATE: id[uuid]:'…' total[numeric]:12.50 cancelled_at[…]:null
and a transaction ends with `COMMIT <xid> (at <timestamp>)` when `include-timestamp` is on.
"""

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

CHANGE = re.compile(r"table (?P<schema>[^.]+)\.(?P<table>[^:]+): (?P<op>INSERT|UPDATE|DELETE): ")
COMMIT = re.compile(r"COMMIT(?: (?P<xid>\d+))?(?: \(at (?P<at>[^)]+)\))?")
OPS = {"INSERT": "I", "UPDATE": "U", "DELETE": "D"}


@dataclass
class Change:
    op: str  # I, U or D, as DMS writes it
    schema: str
    table: str
    values: dict[str, object]  # typed; a DELETE carries only the key columns


@dataclass
class Transaction:
    xid: int
    commit_lsn: str = ""
    committed_at: datetime | None = None
    changes: list[Change] = field(default_factory=list)


def typed(postgres_type: str, text: str | None):
    """A column's text (as PostgreSQL prints it) as the Python value it stands for."""
    if text is None:
        return None
    if postgres_type == "uuid":
        return uuid.UUID(text)
    if postgres_type.startswith("timestamp"):
        return datetime.fromisoformat(text)
    if postgres_type == "date":
        return date.fromisoformat(text)
    if postgres_type == "numeric":
        return Decimal(text)
    if postgres_type in ("integer", "bigint", "smallint"):
        return int(text)
    if postgres_type == "boolean":
        return text in ("true", "t")
    if postgres_type in ("json", "jsonb"):
        return json.loads(text)
    return text


def parse_values(text: str) -> dict[str, object]:
    """`name[type]:value …` with quoted ('' escaped), bare or null values."""
    values: dict[str, object] = {}
    position = 0
    while position < len(text):
        bracket = text.index("[", position)
        name = text[position:bracket]
        close = text.index("]:", bracket)
        kind = text[bracket + 1 : close]
        position = close + 2
        if text.startswith("'", position):
            end = position + 1
            parts = []
            while True:
                quote = text.index("'", end)
                parts.append(text[end:quote])
                if text.startswith("''", quote):
                    parts.append("'")
                    end = quote + 2
                    continue
                position = quote + 1
                break
            raw: str | None = "".join(parts)
        else:
            space = text.find(" ", position)
            end = len(text) if space == -1 else space
            raw = text[position:end]
            position = end
            if raw == "null":
                raw = None
        values[name.strip('"')] = typed(kind, raw)
        while position < len(text) and text[position] == " ":
            position += 1
    return values


def parse_change(line: str) -> Change | None:
    match = CHANGE.match(line)
    if match is None:
        return None
    body = line[match.end() :]
    if body.startswith("old-key: "):  # the key changed: keep the new tuple
        body = body.split(" new-tuple: ", 1)[1]
    elif body.startswith("(no-tuple-data)"):
        body = ""
    return Change(
        op=OPS[match["op"]],
        schema=match["schema"],
        table=match["table"],
        values=parse_values(body),
    )


def transactions(rows) -> list[Transaction]:
    """Group (lsn, xid, data) rows, as the slot functions return them, into transactions."""
    found: list[Transaction] = []
    current: Transaction | None = None
    for lsn, xid, data in rows:
        if data.startswith("BEGIN"):
            current = Transaction(xid=int(xid))
        elif data.startswith("COMMIT") and current is not None:
            match = COMMIT.match(data)
            current.commit_lsn = str(lsn)
            if match and match["at"]:
                current.committed_at = datetime.fromisoformat(match["at"])
            found.append(current)
            current = None
        elif current is not None:
            change = parse_change(data)
            if change is not None:
                current.changes.append(change)
    return found
