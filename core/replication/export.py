"""The hand-off to Terraform: DMS table mappings, task settings, an HCL snippet, and the schema
with the type DMS gives each column, all read from the live database."""

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.replication import DEFAULT_PUBLICATION, SCHEMA, TABLE_PREFIX, core_tables

# PostgreSQL type (as format_type prints it, without its modifier) -> AWS DMS type.
DMS_TYPES = {
    "uuid": "STRING",
    "boolean": "BOOLEAN",  # with the endpoint's map_boolean_as_boolean (else STRING(5))
    "smallint": "INT2",
    "integer": "INT4",
    "bigint": "INT8",
    "real": "REAL4",
    "double precision": "REAL8",
    "date": "DATE",
    "time without time zone": "TIME",
    "timestamp without time zone": "DATETIME",
    "timestamp with time zone": "DATETIME",
    "json": "NCLOB",
    "jsonb": "NCLOB",
    "text": "NCLOB",
    "xml": "NCLOB",
    "bytea": "BLOB",
}
LOB_DMS_TYPES = {"NCLOB", "CLOB", "BLOB"}
MIN_LOB_MAX_KB = 32


def dms_type(postgres_type: str) -> str:
    """The DMS type of a PostgreSQL column type, e.g. numeric(12,2) -> NUMERIC(12,2)."""
    match = re.fullmatch(r"numeric\((\d+),(\d+)\)", postgres_type)
    if match:
        precision, scale = map(int, match.groups())
        return f"NUMERIC({precision},{scale})" if precision <= 38 else "STRING"
    match = re.fullmatch(r"character(?: varying)?\((\d+)\)", postgres_type)
    if match:
        return f"WSTRING({match.group(1)})"
    if postgres_type == "character varying":
        return "NCLOB"  # unbounded varchar travels as a LOB, like text
    return DMS_TYPES.get(postgres_type, "STRING")


@dataclass
class Column:
    name: str
    type: str
    nullable: bool
    dms_type: str
    largest_bytes: int | None = None  # LOB columns only: the longest value stored now


@dataclass
class Table:
    name: str
    columns: list[Column]
    primary_key: list[str]
    indexes: list[dict] = field(default_factory=list)


def read_schema(cursor, *, measure_lobs: bool = True) -> list[Table]:
    """Every core table as the catalog describes it; `measure_lobs` also finds the longest
    value of each LOB column (a scan of the table)."""
    tables = []
    for name in core_tables(cursor):
        cursor.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull "
            "FROM pg_attribute a WHERE a.attrelid = %s::regclass AND a.attnum > 0 "
            "AND NOT a.attisdropped ORDER BY a.attnum",
            [f"{SCHEMA}.{name}"],
        )
        columns = [
            Column(n, kind, nullable, dms_type(kind)) for n, kind, nullable in cursor.fetchall()
        ]
        for column in columns:
            if measure_lobs and column.dms_type in LOB_DMS_TYPES:
                cursor.execute(
                    f'SELECT coalesce(max(octet_length("{column.name}"::text)), 0) '
                    f"FROM {SCHEMA}.{name}"
                )
                column.largest_bytes = cursor.fetchone()[0]
        cursor.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary "
            "ORDER BY array_position(i.indkey, a.attnum)",
            [f"{SCHEMA}.{name}"],
        )
        primary_key = [column for (column,) in cursor.fetchall()]
        cursor.execute(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid), i.indisunique FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass ORDER BY 1",
            [f"{SCHEMA}.{name}"],
        )
        indexes = [
            {"name": index, "definition": definition, "unique": unique}
            for index, definition, unique in cursor.fetchall()
        ]
        tables.append(Table(name, columns, primary_key, indexes))
    return tables


def lob_max_kb(tables: list[Table], floor_kb: int = MIN_LOB_MAX_KB) -> int:
    """LobMaxSize for limited LOB mode: at least `floor_kb`, and twice the largest value stored
    now rounded up to a power of two, so today's data is never cut and there is headroom."""
    largest = max(
        (column.largest_bytes or 0 for table in tables for column in table.columns), default=0
    )
    needed = math.ceil(largest * 2 / 1024)
    return max(floor_kb, 2 ** math.ceil(math.log2(needed)) if needed > 1 else 1)


def escape_dms_name(name: str) -> str:
    """In DMS object locators `%` and `_` are wildcards; `[_]` is a literal underscore."""
    return name.replace("_", "[_]")


def table_mappings(
    *, target_schema: str | None, strip_prefix: bool, exclude_columns: list[tuple[str, str]]
) -> dict:
    tables = escape_dms_name(TABLE_PREFIX) + "%"
    rules: list[dict] = [
        {
            "rule-type": "selection",
            "rule-id": "1",
            "rule-name": "core-tables",
            "object-locator": {"schema-name": SCHEMA, "table-name": tables},
            "rule-action": "include",
        }
    ]

    def transformation(name: str, target: str, locator: dict, action: str, **extra) -> dict:
        return {
            "rule-type": "transformation",
            "rule-id": str(len(rules) + 1),
            "rule-name": name,
            "rule-target": target,
            "object-locator": locator,
            "rule-action": action,
            **extra,
        }

    if target_schema:
        rules.append(
            transformation(
                "rename-schema", "schema", {"schema-name": SCHEMA}, "rename", value=target_schema
            )
        )
    if strip_prefix:
        rules.append(
            transformation(
                "strip-table-prefix",
                "table",
                {"schema-name": SCHEMA, "table-name": tables},
                "remove-prefix",
                value=TABLE_PREFIX,
            )
        )
    for table, column in exclude_columns:
        rules.append(
            transformation(
                f"exclude-{table}-{column}".replace("_", "-"),
                "column",
                {
                    "schema-name": SCHEMA,
                    "table-name": escape_dms_name(table),
                    "column-name": escape_dms_name(column),
                },
                "remove-column",
            )
        )
    return {"rules": rules}


def task_settings(*, lob_max: int) -> dict:
    return {
        "TargetMetadata": {
            "SupportLobs": True,
            "FullLobMode": False,
            "LimitedSizeLobMode": True,
            "LobMaxSize": lob_max,
        },
        "FullLoadSettings": {"TargetTablePrepMode": "DROP_AND_CREATE"},
        "Logging": {"EnableLogging": True},
        "ChangeProcessingTuning": {"BatchApplyEnabled": False},
    }


def terraform(*, slot: str | None, lob_max: int, publication: str = DEFAULT_PUBLICATION) -> str:
    """An HCL snippet: PostgreSQL source, S3 target (Parquet for Athena/Glue) and the task.

    Without `slot`, DMS creates and names its own slot; with it, DMS uses that existing slot
    (create it with `setup_replication --slot NAME --plugin test_decoding`).
    """
    slot_line = f'    slot_name              = "{slot}"\n' if slot else ""
    return f"""# Generated by `manage.py export_dms`: the DMS pipeline from this database to S3.
# Secrets stay out of this file: the password is read from AWS Secrets Manager.

variable "name_prefix" {{
  type    = string
  default = "lakehouse-poc"
}}

variable "replication_instance_arn" {{
  type = string
}}

variable "source_host" {{
  type = string
}}

variable "source_port" {{
  type    = number
  default = 5432
}}

variable "source_database" {{
  type    = string
  default = "lakehouse_poc"
}}

variable "source_secret_arn" {{
  description = "Secrets Manager secret holding the source username and password"
  type        = string
}}

variable "secrets_access_role_arn" {{
  description = "IAM role DMS assumes to read source_secret_arn"
  type        = string
}}

variable "s3_bucket" {{
  type = string
}}

variable "s3_folder" {{
  type    = string
  default = "raw/lakehouse"
}}

variable "s3_access_role_arn" {{
  description = "IAM role DMS assumes to write to the bucket"
  type        = string
}}

resource "aws_dms_endpoint" "source" {{
  endpoint_id                     = "${{var.name_prefix}}-source"
  endpoint_type                   = "source"
  engine_name                     = "postgres"
  server_name                     = var.source_host
  port                            = var.source_port
  database_name                   = var.source_database
  secrets_manager_arn             = var.source_secret_arn
  secrets_manager_access_role_arn = var.secrets_access_role_arn
  ssl_mode                        = "require"

  postgres_settings {{
    plugin_name            = "test_decoding"
{slot_line}    heartbeat_enable       = true
    heartbeat_frequency    = 5
    capture_ddls           = false
    map_boolean_as_boolean = true
    fail_tasks_on_lob_truncation = true
  }}
}}

resource "aws_dms_s3_endpoint" "target" {{
  endpoint_id                      = "${{var.name_prefix}}-s3"
  endpoint_type                    = "target"
  bucket_name                      = var.s3_bucket
  bucket_folder                    = var.s3_folder
  service_access_role_arn          = var.s3_access_role_arn
  data_format                      = "parquet"
  parquet_version                  = "parquet-2-0"
  compression_type                 = "GZIP"
  include_op_for_full_load         = true
  timestamp_column_name            = "dms_commit_ts"
  parquet_timestamp_in_millisecond = true
  date_partition_enabled           = true
  date_partition_sequence          = "YYYYMMDD"
  date_partition_delimiter         = "SLASH"
  cdc_max_batch_interval           = 60
  cdc_min_file_size                = 32000
}}

resource "aws_dms_replication_task" "cdc" {{
  replication_task_id       = "${{var.name_prefix}}-full-load-and-cdc"
  migration_type            = "full-load-and-cdc"
  replication_instance_arn  = var.replication_instance_arn
  source_endpoint_arn       = aws_dms_endpoint.source.endpoint_arn
  target_endpoint_arn       = aws_dms_s3_endpoint.target.endpoint_arn
  table_mappings            = file("${{path.module}}/table-mappings.json")
  # Limited LOB mode, LobMaxSize {lob_max} KB: sized from the largest LOB stored today.
  replication_task_settings = file("${{path.module}}/task-settings.json")
}}

# Publication created by `manage.py setup_replication` for Debezium/pgoutput: {publication}
"""


def schema_markdown(tables: list[Table]) -> str:
    lines = [
        "# Core tables as AWS DMS sees them",
        "",
        "Generated by `manage.py export_dms` from the live database. DMS types assume the source "
        "endpoint's `map_boolean_as_boolean = true` (as in dms.tf); without it booleans "
        "arrive as STRING(5). NCLOB/BLOB columns travel as LOBs.",
        "",
    ]
    for table in tables:
        lines += [
            f"## {table.name}",
            "",
            f"Primary key: {', '.join(table.primary_key) or '(none)'}",
            "",
            "| column | PostgreSQL type | null | DMS type |",
            "| --- | --- | --- | --- |",
        ]
        for column in table.columns:
            note = (
                f" (largest now {column.largest_bytes} B)"
                if column.largest_bytes is not None
                else ""
            )
            lines.append(
                f"| {column.name} | {column.type} | {'yes' if column.nullable else 'no'} "
                f"| {column.dms_type}{note} |"
            )
        lines += ["", "Indexes:", ""]
        lines += [f"- `{index['definition']}`" for index in table.indexes]
        lines.append("")
    return "\n".join(lines)


def export_dms(
    cursor,
    *,
    output: Path,
    slot: str | None,
    lob_floor_kb: int,
    target_schema: str | None = None,
    strip_prefix: bool = False,
    exclude_columns: list[tuple[str, str]] = (),
) -> dict[str, Path]:
    tables = read_schema(cursor)
    known = {(table.name, column.name) for table in tables for column in table.columns}
    unknown = [f"{t}.{c}" for t, c in exclude_columns if (t, c) not in known]
    if unknown:
        raise ValueError(f"no such column: {', '.join(unknown)}")
    lob_max = lob_max_kb(tables, lob_floor_kb)
    output.mkdir(parents=True, exist_ok=True)
    files = {
        "table-mappings.json": json.dumps(
            table_mappings(
                target_schema=target_schema,
                strip_prefix=strip_prefix,
                exclude_columns=list(exclude_columns),
            ),
            indent=2,
        ),
        "task-settings.json": json.dumps(task_settings(lob_max=lob_max), indent=2),
        "dms.tf": terraform(slot=slot, lob_max=lob_max),
        "schema.json": json.dumps(
            {"lob_max_kb": lob_max, "tables": [asdict(table) for table in tables]}, indent=2
        ),
        "schema.md": schema_markdown(tables),
    }
    written = {}
    for name, text in files.items():
        path = output / name
        path.write_text(text + ("" if text.endswith("\n") else "\n"))
        written[name] = path
    return written
