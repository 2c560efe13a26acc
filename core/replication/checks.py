"""Is this PostgreSQL ready to be an AWS DMS (or Debezium) source? Each check says PASS, WARN
or FAIL, what it measured, and for anything but PASS the exact fix.

Every check runs on its own: one that lacks the rights to look (a view it may not read, a slot
it may not create) reports WARN with the reason instead of stopping the rest.
"""

import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass

import psycopg2

from core.capture import dms_types
from core.source.catalog import SCHEMA, core_tables, read_schema
from core.source.quoting import quoted

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
# PostgreSQL major version -> the first AWS DMS engine version that supports it as a source.
DMS_ENGINE_FOR = {13: "3.4.3", 14: "3.4.7", 15: "3.5.1", 16: "3.5.3", 17: "3.6.1"}
NEWEST_SUPPORTED, OLDEST_SUPPORTED = 17, 9.4
LONG_TRANSACTION_MINUTES = 5
RDS_PARAMETER_GROUP = "the DB parameter group (RDS/Aurora)"


@dataclass
class Check:
    name: str
    status: str
    value: str
    fix: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Context:
    publication: str
    lob_max_kb: int


def one(cursor, sql: str, params: list | None = None):
    cursor.execute(sql, params or [])
    return cursor.fetchone()[0]


def setting(cursor, name: str) -> str:
    return one(cursor, "SELECT current_setting(%s)", [name])


def server_version(cursor, context: Context) -> Check:
    number = int(setting(cursor, "server_version_num"))
    major = number // 10000 if number >= 100000 else number / 10000
    shown = setting(cursor, "server_version").split()[0]
    if major < OLDEST_SUPPORTED:
        return Check("server version", FAIL, shown, "upgrade to PostgreSQL 12 or newer")
    if major > NEWEST_SUPPORTED:
        return Check(
            "server version",
            WARN,
            shown,
            f"newer than DMS lists (up to {NEWEST_SUPPORTED}); check the DMS release notes",
        )
    engine = DMS_ENGINE_FOR.get(int(major))
    return Check(
        "server version", PASS, f"{shown} (DMS engine {engine} or newer)" if engine else shown
    )


def wal_level(cursor, context: Context) -> Check:
    level = setting(cursor, "wal_level")
    if level == "logical":
        return Check("wal_level", PASS, level)
    return Check(
        "wal_level",
        FAIL,
        level,
        "postgresql.conf: wal_level = logical (then restart); RDS/Aurora: "
        f"rds.logical_replication = 1 in {RDS_PARAMETER_GROUP}, then reboot",
    )


def replication_slots(cursor, context: Context) -> Check:
    limit = int(setting(cursor, "max_replication_slots"))
    used = one(cursor, "SELECT count(*) FROM pg_replication_slots")
    value = f"{used} of {limit} in use"
    if used >= limit:
        status = FAIL
    elif limit - used < 2:
        status = WARN  # DMS needs one for its task, and the readiness probe one more
    else:
        return Check("max_replication_slots", PASS, value)
    return Check(
        "max_replication_slots",
        status,
        value,
        f"postgresql.conf: max_replication_slots = {max(used + 4, 4)} (then restart), or drop "
        "slots nobody uses: SELECT pg_drop_replication_slot('<name>')",
    )


def wal_senders(cursor, context: Context) -> Check:
    limit = int(setting(cursor, "max_wal_senders"))
    used = one(cursor, "SELECT count(*) FROM pg_stat_replication")
    value = f"{used} of {limit} in use"
    if used < limit - 1:
        return Check("max_wal_senders", PASS, value)
    return Check(
        "max_wal_senders",
        FAIL if used >= limit else WARN,
        value,
        f"postgresql.conf: max_wal_senders = {used + 4} (then restart)",
    )


def sender_timeout(cursor, context: Context) -> Check:
    milliseconds = int(
        one(cursor, "SELECT setting FROM pg_settings WHERE name = 'wal_sender_timeout'")
    )
    value = f"{milliseconds} ms"
    if milliseconds == 0 or milliseconds >= 10000:
        return Check("wal_sender_timeout", PASS, value)
    return Check(
        "wal_sender_timeout",
        FAIL,
        value,
        "DMS needs 0 or at least 10000 ms: postgresql.conf: wal_sender_timeout = 60s "
        f"(then reload); RDS/Aurora: wal_sender_timeout in {RDS_PARAMETER_GROUP}",
    )


def replication_rights(cursor, context: Context) -> Check:
    user = one(cursor, "SELECT current_user")
    cursor.execute("SELECT rolsuper, rolreplication FROM pg_roles WHERE rolname = current_user")
    superuser, replication = cursor.fetchone()
    rds = one(
        cursor,
        "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_replication' "
        "AND pg_has_role(current_user, oid, 'member'))",
    )
    if superuser or replication or rds:
        how = "superuser" if superuser else "REPLICATION" if replication else "rds_replication"
        return Check("replication rights", PASS, f"{user}: {how}")
    return Check(
        "replication rights",
        FAIL,
        f"{user}: no REPLICATION",
        f"ALTER ROLE {quoted(user)} WITH REPLICATION; "
        f"on RDS/Aurora: GRANT rds_replication TO {quoted(user)};",
    )


def decoding_plugin(plugin: str) -> Callable[[object, Context], Check]:
    def check(cursor, context: Context) -> Check:
        name = f"lakehouse_probe_{uuid.uuid4().hex[:12]}"
        try:
            # A temporary slot vanishes with the session, even if we are killed.
            cursor.execute("SET statement_timeout = '10s'")
            cursor.execute(
                "SELECT pg_create_logical_replication_slot(%s, %s, true)", [name, plugin]
            )
            cursor.execute("SELECT pg_drop_replication_slot(%s)", [name])
        except psycopg2.Error as error:
            reason = str(error).strip().splitlines()[0]
            fix = (
                "install the plugin (PostgreSQL's contrib package)"
                if "could not access file" in reason
                else "see the other checks (rights, free slots, long transactions)"
            )
            return Check(f"{plugin} plugin", FAIL, f"cannot create a slot: {reason}", fix)
        finally:
            cursor.execute("RESET statement_timeout")
        return Check(f"{plugin} plugin", PASS, "a temporary slot was created and dropped")

    return check


def publication(cursor, context: Context) -> Check:
    name = context.publication
    cursor.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", [name])
    row = cursor.fetchone()
    create = f"CREATE PUBLICATION {quoted(name)} FOR ALL TABLES; (or: bin/manage setup_replication)"
    why = "Debezium and pgoutput need it; DMS with test_decoding does not"
    if row is None:
        return Check("publication", WARN, f"{name} missing ({why})", create)
    cursor.execute(
        "SELECT tablename FROM pg_publication_tables WHERE pubname = %s AND schemaname = %s",
        [name, SCHEMA],
    )
    covered = {table for (table,) in cursor.fetchall()}
    missing = sorted(set(core_tables(cursor)) - covered)
    if missing:
        return Check(
            "publication",
            WARN,
            f"{name} lacks {', '.join(missing)}",
            f"ALTER PUBLICATION {quoted(name)} ADD TABLE {', '.join(missing)};",
        )
    return Check(
        "publication",
        PASS,
        f"{name} covers all {len(covered & set(core_tables(cursor)))} core tables",
    )


def primary_keys(cursor, context: Context) -> Check:
    cursor.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = ANY(%s) AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint p WHERE p.conrelid = c.oid AND p.contype = 'p')",
        [SCHEMA, core_tables(cursor)],
    )
    without = [table for (table,) in cursor.fetchall()]
    if not without:
        return Check("primary keys", PASS, f"all {len(core_tables(cursor))} core tables have one")
    return Check(
        "primary keys",
        FAIL,
        f"no primary key: {', '.join(without)} (DMS drops their UPDATEs and DELETEs)",
        " ".join(f"ALTER TABLE {table} ADD PRIMARY KEY (<columns>);" for table in without),
    )


def replica_identities(cursor, context: Context) -> Check:
    """`nothing` loses UPDATEs and DELETEs; a table with LOB columns but without FULL loses the
    large values an UPDATE leaves unchanged (not in the WAL: DMS writes NULL over them)."""
    cursor.execute(
        "SELECT c.relname, c.relreplident FROM pg_class c JOIN pg_namespace n "
        "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = ANY(%s) ORDER BY 1",
        [SCHEMA, core_tables(cursor)],
    )
    names = {"d": "default", "f": "full", "i": "index", "n": "nothing"}
    identities = {table: names[kind] for table, kind in cursor.fetchall()}
    value = ", ".join(f"{table}={kind}" for table, kind in identities.items())
    nothing = [table for table, kind in identities.items() if kind == "nothing"]
    if nothing:
        return Check(
            "replica identity",
            FAIL,
            value,
            " ".join(f"ALTER TABLE {table} REPLICA IDENTITY DEFAULT;" for table in nothing),
        )
    lob_tables = {table.name for table in read_schema(cursor) if dms_types.lob_columns(table)}
    partial = [table for table in sorted(lob_tables) if identities.get(table) != "full"]
    if partial:
        return Check(
            "replica identity",
            WARN,
            value,
            f"{', '.join(partial)} have LOB columns: an UPDATE that leaves a large value unchanged "
            "does not log it, and it arrives as NULL; `bin/manage setup_replication` (or "
            + " ".join(f"ALTER TABLE {table} REPLICA IDENTITY FULL;" for table in partial)
            + ") logs the whole old row",
        )
    return Check("replica identity", PASS, value)


def inactive_slots(cursor, context: Context) -> list[Check]:
    cursor.execute(
        "SELECT slot_name, plugin, active, "
        "pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint, wal_status "
        "FROM pg_replication_slots ORDER BY slot_name"
    )
    checks = []
    for name, plugin, active, retained, wal_status in cursor.fetchall():
        size = pretty_bytes(retained or 0)
        status = slot_status(active, retained or 0, wal_status)
        if active:
            checks.append(
                Check(
                    f"slot {name}",
                    status,
                    f"active ({plugin}), {size} behind",
                    "its reader is falling behind: give it more room, or see what slows it",
                )
            )
        else:
            checks.append(
                Check(
                    f"slot {name}",
                    status,
                    f"inactive ({plugin}), retains {size} of WAL (wal_status {wal_status})",
                    f"if nothing reads it any more: SELECT pg_drop_replication_slot('{name}');"
                    " an abandoned slot keeps WAL until the disk fills",
                )
            )
    return checks or [Check("replication slots", PASS, "none yet")]


# An active slot that holds more WAL than this is worth a look: its reader is falling behind.
SLOT_WAL_WARNING = 1024**3


def slot_status(active: bool, retained: int, wal_status: str | None) -> str:
    """A slot's verdict, for the readiness check and the pipeline page alike: FAIL if its WAL
    is lost; WARN if nothing reads it (it keeps WAL until the disk fills), or if it holds more
    than SLOT_WAL_WARNING; PASS otherwise."""
    if wal_status == "lost":
        return FAIL
    if not active or retained > SLOT_WAL_WARNING:
        return WARN
    return PASS


def long_transactions(cursor, context: Context) -> Check:
    visible = one(
        cursor,
        "SELECT pg_has_role(current_user, 'pg_read_all_stats', 'member') OR "
        "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)",
    )
    cursor.execute(
        "SELECT pid, usename, now() - xact_start FROM pg_stat_activity "
        "WHERE xact_start < now() - make_interval(mins => %s) AND pid <> pg_backend_pid() "
        "ORDER BY xact_start",
        [LONG_TRANSACTION_MINUTES],
    )
    long_ones = cursor.fetchall()
    if long_ones:
        listed = "; ".join(f"pid {pid} ({user}) open {age}" for pid, user, age in long_ones)
        return Check(
            "long-running transactions",
            WARN,
            listed,
            "they delay slot creation and hold back WAL: commit them, or "
            "SELECT pg_terminate_backend(<pid>)",
        )
    if not visible:
        return Check(
            "long-running transactions",
            WARN,
            "only this user's sessions are visible",
            "GRANT pg_read_all_stats TO <user>; to see every session",
        )
    return Check("long-running transactions", PASS, f"none over {LONG_TRANSACTION_MINUTES} min")


def prepared_transactions(cursor, context: Context) -> Check:
    count = one(cursor, "SELECT count(*) FROM pg_prepared_xacts")
    if count == 0:
        return Check("prepared transactions", PASS, "none")
    return Check(
        "prepared transactions",
        WARN,
        f"{count} open",
        "a logical slot cannot be created while they stay open: COMMIT PREPARED '<gid>' or "
        "ROLLBACK PREPARED '<gid>'",
    )


def slot_wal_limit(cursor, context: Context) -> Check:
    limit = setting(cursor, "max_slot_wal_keep_size")
    if limit in ("-1", "-1kB", "-1MB"):
        return Check(
            "max_slot_wal_keep_size",
            WARN,
            "unlimited",
            "an abandoned slot can fill the disk: postgresql.conf: max_slot_wal_keep_size = 10GB "
            f"(then reload); RDS/Aurora: in {RDS_PARAMETER_GROUP}",
        )
    return Check("max_slot_wal_keep_size", PASS, limit)


def decoding_memory(cursor, context: Context) -> Check:
    kilobytes = int(
        one(cursor, "SELECT setting FROM pg_settings WHERE name = 'logical_decoding_work_mem'")
    )
    value = pretty_bytes(kilobytes * 1024)
    if kilobytes >= 64 * 1024:
        return Check("logical_decoding_work_mem", PASS, value)
    return Check(
        "logical_decoding_work_mem",
        WARN,
        value,
        "large transactions spill to disk while decoding: logical_decoding_work_mem = 64MB",
    )


def lob_columns(cursor, context: Context) -> list[Check]:
    """Every column DMS moves as a LOB (export's DMS type mapping decides), with its longest
    value now."""
    checks = []
    limit = context.lob_max_kb * 1024
    for table in dms_types.measure_lobs(cursor, read_schema(cursor)):
        for column in table.columns:
            if column.largest_bytes is None:
                continue
            name = f"LOB {table.name}.{column.name}"
            value = (
                f"{column.type}, largest value now {pretty_bytes(column.largest_bytes)} "
                f"(LobMaxSize {context.lob_max_kb} KB)"
            )
            if column.largest_bytes <= limit:
                checks.append(Check(name, PASS, value))
                continue
            checks.append(
                Check(
                    name,
                    FAIL,
                    value,
                    f"limited LOB mode would cut it: raise LobMaxSize to "
                    f"{(column.largest_bytes + 1023) // 1024} KB (export_dms --lob-max-kb) "
                    "or shrink the values",
                )
            )
    return checks or [Check("LOB columns", PASS, "none")]


def pretty_bytes(count: int) -> str:
    if count < 1024:
        return f"{count} B"
    size = count / 1024
    for unit in ("KB", "MB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


CHECKS: list[Callable] = [
    server_version,
    wal_level,
    replication_slots,
    wal_senders,
    sender_timeout,
    replication_rights,
    decoding_plugin("test_decoding"),
    decoding_plugin("pgoutput"),
    publication,
    primary_keys,
    replica_identities,
    inactive_slots,
    long_transactions,
    prepared_transactions,
    slot_wal_limit,
    decoding_memory,
    lob_columns,
]


def run_checks(connection, *, publication: str, lob_max_kb: int) -> list[Check]:
    """Every check, on `connection` (psycopg2, autocommit)."""
    context = Context(publication=publication, lob_max_kb=lob_max_kb)
    results: list[Check] = []
    for check in CHECKS:
        try:
            with connection.cursor() as cursor:
                outcome = check(cursor, context)
        except psycopg2.Error as error:
            name = getattr(check, "__name__", "check").replace("_", " ")
            reason = str(error).strip().splitlines()[0]
            outcome = Check(name, WARN, f"could not check: {reason}", "grant the user read access")
        results.extend(outcome if isinstance(outcome, list) else [outcome])
    return results
