"""Create (idempotently) what CDC needs: the publication, replica identities, a slot."""

import re
from dataclasses import dataclass, field

from core.capture.dms_types import lob_columns
from core.errors import ReplicationSetupError
from core.source.catalog import SCHEMA, core_tables, read_schema
from core.source.quoting import quoted

PLUGINS = ("test_decoding", "pgoutput")
REPLICA_IDENTITIES = {"default": "d", "full": "f"}
# `auto`: FULL where a table has a LOB column (json, jsonb, text), DEFAULT elsewhere. An UPDATE
# that leaves a large (TOASTed) value unchanged does not write it to the WAL; only a table that
# logs its whole old row lets a reader (cdc_tail, Debezium) carry that value on, where DMS and
# others would otherwise write NULL over it.
IDENTITY_CHOICES = ("auto", "default", "full")
NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
DEFAULT_PUBLICATION = "dms_publication"


def valid_name(kind: str, name: str) -> str:
    """Slot and publication names go into SQL; only plain lower-case identifiers do."""
    if not NAME.fullmatch(name):
        raise ReplicationSetupError(
            f"{kind} name {name!r}: use 1-63 lower-case letters, digits and underscores, "
            "starting with a letter or underscore"
        )
    return name


def wanted_identities(cursor, replica_identity: str) -> dict[str, str]:
    """The replica identity each core table should have: table -> default or full."""
    tables = read_schema(cursor)
    if replica_identity != "auto":
        return {table.name: replica_identity for table in tables}
    return {table.name: "full" if lob_columns(table) else "default" for table in tables}


@dataclass
class SetupReport:
    done: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)

    def add(self, other: "SetupReport") -> None:
        self.done += other.done
        self.existing += other.existing


def publication_exists(cursor, name: str) -> bool:
    cursor.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", [name])
    return cursor.fetchone() is not None


def slot_plugin(cursor, name: str) -> str | None:
    cursor.execute("SELECT plugin FROM pg_replication_slots WHERE slot_name = %s", [name])
    row = cursor.fetchone()
    return row[0] if row else None


def setup_replication(
    cursor,
    *,
    publication: str,
    replica_identity: str = "auto",
    slot: str | None = None,
    plugin: str = "test_decoding",
) -> SetupReport:
    valid_name("publication", publication)
    if slot:
        valid_name("slot", slot)
    report = SetupReport()
    if publication_exists(cursor, publication):
        report.existing.append(f"publication {publication}")
    else:
        try:
            cursor.execute(f"CREATE PUBLICATION {quoted(publication)} FOR ALL TABLES")
        except Exception as error:
            raise ReplicationSetupError(
                f"could not create publication {publication} ({str(error).strip()}): "
                "FOR ALL TABLES needs a superuser (on RDS, the master user)"
            ) from None
        report.done.append(f"created publication {publication} FOR ALL TABLES")

    wanted = wanted_identities(cursor, replica_identity)
    cursor.execute(
        "SELECT c.relname, c.relreplident FROM pg_class c JOIN pg_namespace n "
        "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = ANY(%s)",
        [SCHEMA, list(wanted)],
    )
    unchanged = []
    for table, current in sorted(cursor.fetchall()):
        identity = wanted[table]
        if current == REPLICA_IDENTITIES[identity]:
            unchanged.append(f"{table} {identity}")
            continue
        cursor.execute(f"ALTER TABLE {SCHEMA}.{quoted(table)} REPLICA IDENTITY {identity.upper()}")
        why = " (it has LOB columns)" if replica_identity == "auto" and identity == "full" else ""
        report.done.append(f"set replica identity {identity} on {table}{why}")
    if unchanged:
        report.existing.append("replica identity " + ", ".join(unchanged))

    if slot:
        existing_plugin = slot_plugin(cursor, slot)
        if existing_plugin is None:
            cursor.execute("SELECT pg_create_logical_replication_slot(%s, %s)", [slot, plugin])
            report.done.append(f"created logical slot {slot} ({plugin})")
        elif existing_plugin != plugin:
            raise ReplicationSetupError(
                f"slot {slot} exists with plugin {existing_plugin}, not {plugin}: choose "
                f"another --slot, or drop it with `setup_replication --drop --slot {slot}`"
            )
        else:
            report.existing.append(f"logical slot {slot} ({plugin})")
    return report


def drop_slot(cursor, *, slot: str) -> SetupReport:
    """Drop one slot, and nothing else."""
    valid_name("slot", slot)
    report = SetupReport()
    if slot_plugin(cursor, slot) is None:
        report.existing.append(f"no slot {slot}")
        return report
    cursor.execute(
        "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s AND active", [slot]
    )
    reader = cursor.fetchone()
    if reader is not None:
        raise ReplicationSetupError(
            f"slot {slot} is being read (process {reader[0]}): stop its reader first"
        )
    cursor.execute("SELECT pg_drop_replication_slot(%s)", [slot])
    report.done.append(f"dropped slot {slot}")
    return report


def drop_publication(cursor, *, publication: str) -> SetupReport:
    """Drop the publication and put the core tables' replica identities back to default."""
    valid_name("publication", publication)
    report = SetupReport()
    if publication_exists(cursor, publication):
        cursor.execute(f"DROP PUBLICATION {quoted(publication)}")
        report.done.append(f"dropped publication {publication}")
    else:
        report.existing.append(f"no publication {publication}")
    cursor.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = ANY(%s) AND c.relreplident <> 'd'",
        [SCHEMA, core_tables(cursor)],
    )
    for (table,) in cursor.fetchall():
        cursor.execute(f"ALTER TABLE {SCHEMA}.{quoted(table)} REPLICA IDENTITY DEFAULT")
        report.done.append(f"set replica identity default on {table}")
    return report
