"""Create (idempotently) what CDC needs: the publication, replica identities, a slot."""

from dataclasses import dataclass, field

from core.replication import SCHEMA, core_tables, quote_identifier

PLUGINS = ("test_decoding", "pgoutput")
REPLICA_IDENTITIES = {"default": "d", "full": "f"}


class ReplicationSetupError(Exception):
    """One line saying what failed and what to do."""


@dataclass
class SetupReport:
    done: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)


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
    replica_identity: str,
    slot: str | None = None,
    plugin: str = "test_decoding",
) -> SetupReport:
    report = SetupReport()
    if publication_exists(cursor, publication):
        report.existing.append(f"publication {publication}")
    else:
        try:
            cursor.execute(f"CREATE PUBLICATION {quote_identifier(publication)} FOR ALL TABLES")
        except Exception as error:
            raise ReplicationSetupError(
                f"could not create publication {publication} ({str(error).strip()}): "
                "FOR ALL TABLES needs a superuser (on RDS, the master user)"
            ) from None
        report.done.append(f"created publication {publication} FOR ALL TABLES")

    wanted = REPLICA_IDENTITIES[replica_identity]
    cursor.execute(
        "SELECT c.relname, c.relreplident FROM pg_class c JOIN pg_namespace n "
        "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = ANY(%s)",
        [SCHEMA, core_tables(cursor)],
    )
    unchanged = []
    for table, current in sorted(cursor.fetchall()):
        if current == wanted:
            unchanged.append(table)
            continue
        cursor.execute(
            f"ALTER TABLE {SCHEMA}.{quote_identifier(table)} "
            f"REPLICA IDENTITY {replica_identity.upper()}"
        )
        report.done.append(f"set replica identity {replica_identity} on {table}")
    if unchanged:
        report.existing.append(f"replica identity {replica_identity} on {len(unchanged)} tables")

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


def drop_replication(cursor, *, publication: str, slot: str | None = None) -> SetupReport:
    """Remove the publication (and slot), and put replica identities back to default."""
    report = SetupReport()
    if publication_exists(cursor, publication):
        cursor.execute(f"DROP PUBLICATION {quote_identifier(publication)}")
        report.done.append(f"dropped publication {publication}")
    else:
        report.existing.append(f"no publication {publication}")
    if slot:
        if slot_plugin(cursor, slot) is None:
            report.existing.append(f"no slot {slot}")
        else:
            cursor.execute("SELECT pg_drop_replication_slot(%s)", [slot])
            report.done.append(f"dropped slot {slot}")
    cursor.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = ANY(%s) AND c.relreplident <> 'd'",
        [SCHEMA, core_tables(cursor)],
    )
    for (table,) in cursor.fetchall():
        cursor.execute(f"ALTER TABLE {SCHEMA}.{quote_identifier(table)} REPLICA IDENTITY DEFAULT")
        report.done.append(f"set replica identity default on {table}")
    return report
