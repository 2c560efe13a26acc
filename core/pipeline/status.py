"""The pipeline at a glance: what the status page (/admin/pipeline/) shows, gathered from the
source's catalogue and statistics, its replication slots, the captures and warehouses the
registry knows (core/registry.py), and what they record of themselves. Read-only throughout.

Kept fast at millions of rows: row counts come from the planner's statistics where a table is
big (pg_class.reltuples, split by tenant with pg_stats' most common values of tenant_id, the
way the admin's lists show "about N"), and the rates (writes and WAL per minute) from two
readings of PostgreSQL's counters some seconds apart, kept in this process."""

import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.utils.safestring import mark_safe

from core.capture.record import Capture
from core.capture.target import change_range, lsn_number
from core.errors import ProjectError
from core.replication.checks import pretty_bytes, slot_status
from core.replication.setup import DEFAULT_PUBLICATION
from core.source.catalog import SCHEMA, TABLE_PREFIX
from core.storage import location

# Below this many rows (by the planner's estimate) a table is counted exactly, per tenant.
EXACT_BELOW = 200_000
# Readings of the counters kept, and the least time between the two a rate is taken from.
READINGS = 120
RATE_OVER_SECONDS = 5.0


@dataclass
class Reading:
    at: float  # time.monotonic()
    writes: int  # rows inserted, updated and deleted in the core tables, since stats reset
    wal: int  # pg_current_wal_lsn as a number


_readings: deque[Reading] = deque(maxlen=READINGS)


def rates(latest: Reading) -> tuple[float | None, float | None]:
    """Writes and WAL bytes per minute, from the oldest reading kept that is far enough back
    (None until there is one: the first look at the page)."""
    _readings.append(latest)
    for earlier in _readings:
        seconds = latest.at - earlier.at
        if seconds >= RATE_OVER_SECONDS:
            per_minute = 60 / seconds
            writes = max(latest.writes - earlier.writes, 0) * per_minute
            return writes, max(latest.wal - earlier.wal, 0) * per_minute
    return None, None


# --- the source ------------------------------------------------------------------------------


@dataclass
class SourceTable:
    name: str
    rows: int
    estimated: bool
    by_tenant: dict[str, int]  # tenant id -> rows


@dataclass
class Source:
    tables: list[SourceTable]
    tenants: dict[str, str]  # id -> name
    publication: str | None  # its name, if there is one
    published: list[str]  # the core tables it covers
    writes_per_minute: float | None
    wal_per_minute: float | None
    current_lsn: int


def source(cursor) -> Source:
    cursor.execute("SELECT id::text, name FROM core_tenant ORDER BY name")
    tenants = dict(cursor.fetchall())
    cursor.execute(
        "SELECT c.relname, greatest(c.reltuples, 0)::bigint FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind = 'r' AND c.relname LIKE %s ORDER BY c.relname",
        [SCHEMA, TABLE_PREFIX.replace("_", "\\_") + "%"],
    )
    tables = [table_rows(cursor, name, planned) for name, planned in cursor.fetchall()]
    for table in tables:
        if not table.estimated:  # counted: a tenant with no rows has 0 of them
            table.by_tenant = {tenant: table.by_tenant.get(tenant, 0) for tenant in tenants}
    cursor.execute(
        "SELECT pubname, puballtables FROM pg_publication ORDER BY pubname = %s DESC, pubname",
        [DEFAULT_PUBLICATION],
    )
    found = cursor.fetchone()
    published = []
    if found:
        cursor.execute(
            "SELECT tablename FROM pg_publication_tables WHERE pubname = %s AND schemaname = %s "
            "AND tablename LIKE %s ORDER BY 1",
            [found[0], SCHEMA, TABLE_PREFIX.replace("_", "\\_") + "%"],
        )
        published = [name for (name,) in cursor.fetchall()]
    cursor.execute(
        "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint, "
        "pg_current_wal_lsn()::text FROM pg_stat_user_tables "
        "WHERE schemaname = %s AND relname LIKE %s",
        [SCHEMA, TABLE_PREFIX.replace("_", "\\_") + "%"],
    )
    writes, lsn = cursor.fetchone()
    writes_per_minute, wal_per_minute = rates(Reading(time.monotonic(), writes, lsn_number(lsn)))
    return Source(
        tables=tables,
        tenants=tenants,
        publication=found[0] if found else None,
        published=published,
        writes_per_minute=writes_per_minute,
        wal_per_minute=wal_per_minute,
        current_lsn=lsn_number(lsn),
    )


def table_rows(cursor, name: str, planned: int) -> SourceTable:
    """Exact per tenant when small; for a big table the planner's row count, split by the
    shares pg_stats keeps of its most common tenant ids."""
    tenant = "id" if name == "core_tenant" else "tenant_id"
    if planned < EXACT_BELOW:
        cursor.execute(f'SELECT {tenant}::text, count(*) FROM {SCHEMA}."{name}" GROUP BY 1')
        by_tenant = dict(cursor.fetchall())
        return SourceTable(name, sum(by_tenant.values()), False, by_tenant)
    cursor.execute(
        "SELECT most_common_vals::text::text[], most_common_freqs FROM pg_stats "
        "WHERE schemaname = %s AND tablename = %s AND attname = 'tenant_id'",
        [SCHEMA, name],
    )
    found = cursor.fetchone()
    shares = dict(zip(*found, strict=True)) if found and found[0] else {}
    by_tenant = {tenant: round(share * planned) for tenant, share in shares.items()}
    return SourceTable(name, planned, True, by_tenant)


# --- replication -----------------------------------------------------------------------------


@dataclass
class Slot:
    name: str
    plugin: str
    active: bool
    held_bytes: int
    held_minutes: float | None  # the WAL it holds, at the rate WAL is being written now
    confirmed: str | None
    status: str  # PASS, WARN or FAIL: the readiness check's rule

    @property
    def held(self) -> str:
        return pretty_bytes(self.held_bytes)


def slots(cursor, wal_per_minute: float | None) -> list[Slot]:
    cursor.execute(
        "SELECT slot_name, plugin, active, "
        "coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint, "
        "confirmed_flush_lsn::text, wal_status FROM pg_replication_slots ORDER BY slot_name"
    )
    found = []
    for name, plugin, active, held, confirmed, wal_status in cursor.fetchall():
        minutes = held / wal_per_minute if wal_per_minute else None
        status = slot_status(active, held, wal_status)
        found.append(Slot(name, plugin, active, held, minutes, confirmed, status))
    return found


# --- captures --------------------------------------------------------------------------------


@dataclass
class CaptureTable:
    name: str
    files: int
    rows: int  # full load and changes, as the record counts them


@dataclass
class CaptureStatus:
    name: str
    problem: str | None = None  # why it cannot be shown
    slot: str = ""
    data_format: str = ""
    files: int = 0
    last_file: str | None = None
    last_change: str | None = None  # the commit time of the last change written (UTC)
    behind_bytes: int | None = None  # WAL the source wrote after the last change taken
    tables: list[CaptureTable] = field(default_factory=list)
    history: list[list[int]] = field(default_factory=list)  # [minute, changes, seconds behind]

    @property
    def behind(self) -> str:
        return "" if self.behind_bytes is None else pretty_bytes(self.behind_bytes)

    @property
    def chart(self) -> str:
        return mark_safe(history_chart(self.history))  # numbers and fixed words only


def capture_status(name: str, current_lsn: int) -> CaptureStatus:
    status = CaptureStatus(name)
    try:
        where = location(name)
        capture = Capture.load(where)
        if capture is None:
            status.problem = "no capture here (no capture.json)"
            return status
        files = [f for f in where.files(SCHEMA) if capture.records(f.name)]
    except ProjectError as error:
        status.problem = str(error)
        return status
    status.slot = capture.slot
    status.data_format = capture.target.data_format
    status.files = len(files)
    changes = [f for f in files if change_range(f.name)]
    status.last_file = max(changes or files, key=lambda f: f.name).key if files else None
    status.last_change = capture.last_commit
    status.behind_bytes = max(current_lsn - capture.flushed_lsn, 0)
    status.history = capture.history
    for table in sorted(capture.tables):
        count = sum(1 for f in files if f.key.startswith(f"{SCHEMA}/{table}/"))
        rows = capture.loaded.get(table, 0) + capture.changed.get(table, 0)
        status.tables.append(CaptureTable(table, count, rows))
    return status


# --- warehouses ------------------------------------------------------------------------------


@dataclass
class LakeTable:
    name: str
    version: str  # Delta version, or Iceberg snapshot id
    rows: int | None  # rows in the table's data files: every version and tombstone
    last_file: str | None  # the last capture file a commit of ours recorded


@dataclass
class WarehouseStatus:
    name: str
    problem: str | None = None
    table_format: str = ""
    capture: str = ""
    tables: list[LakeTable] = field(default_factory=list)
    verdict: dict | None = None  # the last lakehouse_verify: against, same, differing, at


def warehouse_status(name: str, recorded: dict) -> WarehouseStatus:
    from core.lake.layout import lake_schema
    from core.lake.warehouse import open_stores, open_warehouse

    status = WarehouseStatus(name, verdict=recorded.get("verdict"))
    try:
        built = open_warehouse(location(name))
        status.table_format = built.table_format
        status.capture = built.capture_id
        stores = open_stores(built.location, built.table_format)
        for table_name, table in built.tables.items():
            found = stores(table_name, lake_schema(table, built.target)).status()
            if found is not None:
                status.tables.append(
                    LakeTable(table_name, found.version, found.rows, found.last_file)
                )
    except ProjectError as error:
        status.problem = str(error)
    except Exception as error:  # an engine's own error: shown, the page goes on
        status.problem = f"cannot read it: {type(error).__name__}: {str(error)[:200]}"
    return status


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# --- charts ----------------------------------------------------------------------------------


def history_chart(history: list[list[int]], *, hours: int = 3, now: float | None = None) -> str:
    """Changes per minute (bars) and how far behind the source each minute's batches were
    written (a line, on its own scale) over the last `hours`, as an SVG drawn here: no script
    and no library to load."""
    width, height, left, right, top, bottom = 640, 140, 8, 8, 18, 20
    end = int((now if now is not None else time.time()) // 60 * 60)
    start = end - hours * 3600
    shown = [entry for entry in history if start <= entry[0] <= end]
    most = max((changes for _, changes, _ in shown), default=0) or 1
    slowest = max((behind for _, _, behind in shown), default=0) or 1
    span_x = width - left - right
    span_y = height - top - bottom

    def x(minute: int) -> float:
        return left + (minute - start) / (end - start) * span_x

    bar = max(span_x / (hours * 60), 1.0)
    parts = [
        f'<svg class="pipeline-chart" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="changes per minute and lag, last {hours} h">',
        f'<rect x="{left}" y="{top}" width="{span_x}" height="{span_y}" class="frame"/>',
    ]
    for minute, changes, _ in shown:
        tall = changes / most * span_y
        parts.append(
            f'<rect class="bar" x="{x(minute):.1f}" y="{top + span_y - tall:.1f}" '
            f'width="{bar:.1f}" height="{tall:.1f}"><title>{changes:,} changes</title></rect>'
        )
    if shown:
        line = " ".join(
            f"{x(minute) + bar / 2:.1f},{top + span_y - behind / slowest * span_y:.1f}"
            for minute, _, behind in shown
        )
        parts.append(f'<polyline class="lag" points="{line}"/>')
    # The scales' tops: none for an empty window (nothing was measured).
    bars_top = f", up to {most:,}" if shown else ""
    lag_top = f", up to {slowest:,} s" if shown else ""
    parts += [
        f'<text x="{left}" y="12" class="legend bars">changes/min{bars_top}</text>',
        f'<text x="{width - right}" y="12" class="legend lag" text-anchor="end">'
        f"lag{lag_top}</text>",
        f'<text x="{left}" y="{height - 5}" class="axis">{hours} h ago</text>',
        f'<text x="{width - right}" y="{height - 5}" class="axis" text-anchor="end">now</text>',
    ]
    if not shown:
        parts.append(
            f'<text x="{width / 2}" y="{top + span_y / 2}" class="axis" text-anchor="middle">'
            "no changes in this window</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
