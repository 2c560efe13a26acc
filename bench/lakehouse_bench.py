"""Lakehouse benchmark, on a throwaway server (`make bench-lakehouse`, SCALES="large 5 10"): per
scale, a capture's full load applied to Delta and to Iceberg tables by `lakehouse_apply`, each
in its own process, against DuckDB rebuilding the same state in memory from the same files;
then a batch of at least 10,000 changes (simulated 250 actions at a time) applied into each
(the cost the layout is for: it should not grow with the table), and `lakehouse_maintain`
compacting it all. Seconds (of the process, and as the command reports its own work), rows/s
and peak memory of each process.

At `--spark-scales` (large and 5 by default) Spark applies the same full load and batch too
(`lakehouse_apply --engine spark`, local[2]), its JVM's start and peak printed apart.

`--s3` applies the same files from the local S3 store too (uploaded byte for byte), into an
s3:// warehouse: S3's time against the folder's. `--deltalake 1.5.0,1.5.1` also applies the
full load with those delta-rs releases (each installed once into bench/deltalake/VERSION), to
compare their memory with the pinned one's."""

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("SECRET_KEY", "benchmark-only-" + "x" * 40)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lakehouse.settings")
os.environ["DJANGO_ENV_FILE"] = "/nonexistent"

from cdc_bench import NOW, changes_in, manage, sql, start  # noqa: E402  (the same probe)
from machine import throwaway_s3  # noqa: E402

REBUILD = """
import sys, time, duckdb
capture = sys.argv[1]
duck = duckdb.connect()
duck.execute("SET enable_progress_bar = false")
started = time.monotonic()
rows = 0
for table in sys.argv[2:]:
    files = f"{capture}/public/{table}/**/LOAD*.parquet"
    rows += duck.execute(f"SELECT count(*) FROM read_parquet('{files}')").fetchone()[0]
    duck.execute(
        f"CREATE TABLE {table} AS SELECT * FROM read_parquet('{files}') "
        "QUALIFY row_number() OVER (PARTITION BY id ORDER BY ar_h_change_seq DESC) = 1"
    )
    duck.execute(f"DELETE FROM {table} WHERE Op = 'D'")
print(rows, time.monotonic() - started)
"""


def rebuild_in_duckdb(capture: Path, tables: list[str]) -> tuple[int, float, float]:
    probe = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True, check=True)\n"
        "print(done.stdout.strip(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, sys.executable, "-c", REBUILD, str(capture), *tables],
        capture_output=True,
        text=True,
        check=True,
    )
    rows, seconds, peak = done.stdout.split()
    return int(rows), float(seconds), int(peak) / 1024


def upload(capture: Path, url: str, store) -> None:
    """The capture's files, byte for byte, into the store."""
    bucket, prefix = url.removeprefix("s3://").split("/", 1)
    client = store.client(timeout=60)
    for path in capture.rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(capture)}")


def deltalake_release(version: str) -> dict[str, str]:
    """The environment that makes `import deltalake` load that release."""
    folder = ROOT / "bench" / "deltalake" / version
    if not (folder / "deltalake").exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--target",
                str(folder),
                f"deltalake=={version}",
            ],
            check=True,
        )
    return {"PYTHONPATH": str(folder)}


def own_seconds(said: str) -> float | None:
    """The time a command reports for its own work (`... in 2.4s`), without Python's start."""
    found = re.search(r" in (\d+\.\d+)s", said)
    return float(found.group(1)) if found else None


def line(label: str, wall: float, peak: float, rows: int | None = None, said: str = "") -> float:
    """One line of figures; the rate is of the command's own time where it reports one."""
    own = own_seconds(said) or wall
    rate = f"{rows / own:>10,.0f}" if rows else f"{'':>10}"
    mine = f"{own:>8.1f}" if own_seconds(said) else f"{'':>8}"
    print(f"{label:<40} {wall:>8.1f} {mine} {rate} {peak:>9.0f} MB", flush=True)
    return own


def spark_line(label: str, wall: float, peak: float, rows: int, said: str) -> float:
    """A Spark apply's line: its own time without the JVM's start, which is printed apart with
    the JVM's peak (the process's peak is the Python driver's)."""
    own = line(label, wall, peak, rows, said)
    start = re.search(r"its JVM started in (\d+\.\d+)s", said)
    jvm = re.search(r"peak ([\d,]+) MB", said)
    print(
        f"{'':<40} JVM start {start.group(1) if start else '?'} s, "
        f"JVM peak {jvm.group(1) if jvm else '?'} MB"
    )
    return own


def bench_scale(
    scale: str, batch: int, scratch: Path, store, environments: dict, spark: bool
) -> None:
    from core.generation.rows import TABLE_ROWS

    capture = scratch / "cdc"
    manage("seed_all", "--scale", scale, "--clean", "--seed", "2026", "--now", NOW)
    manage("cdc_tail", "--slot", "bench_lake", "--output", str(capture), "--create-slot")
    rows, seconds, peak = rebuild_in_duckdb(capture, list(TABLE_ROWS))
    print(
        f"\n--scale {scale}: full load of {rows:,} rows; deltalake {version('deltalake')}, "
        f"pyiceberg {version('pyiceberg')}, duckdb {version('duckdb')}"
    )
    print(f"{'':<40} {'process':>8} {'its own':>8} {'rows/s':>10} {'peak memory':>12}")
    line("DuckDB rebuild of the full load", seconds, peak, rows)
    rebuild_rate = rows / seconds
    on_s3 = f"s3://lakehouse/bench-lake-{scale}"
    places = {"disk": (str(capture), str(scratch))}
    if store is not None:
        upload(capture, f"{on_s3}/cdc", store)
        places["s3"] = (f"{on_s3}/cdc", on_s3)
    for table_format in ("delta", "iceberg"):
        for where, (source, lake) in places.items():
            seconds, peak, said = manage(
                "lakehouse_apply",
                source,
                "--warehouse",
                f"{lake}/{table_format}",
                "--table-format",
                table_format,
            )
            own = line(f"full load, {table_format}, {where}", seconds, peak, rows, said)
            print(f"{'':<40} {rows / own / rebuild_rate:.2f} of DuckDB's rate")
    if spark:
        for table_format in ("delta", "iceberg"):
            seconds, peak, said = manage(
                "lakehouse_apply", str(capture), "--table-format", table_format,
                "--warehouse", str(scratch / f"{table_format}-spark"), "--engine", "spark",
            )  # fmt: skip
            own = spark_line(
                f"full load, {table_format}, Spark local[2]", seconds, peak, rows, said
            )
            print(f"{'':<40} {rows / own / rebuild_rate:.2f} of DuckDB's rate")
    for release, environment in environments.items():
        seconds, peak, said = manage(
            "lakehouse_apply",
            str(capture),
            "--warehouse",
            str(scratch / f"delta-{release}"),
            env=environment,
        )
        line(f"full load, deltalake {release}", seconds, peak, rows, said)
    changes = simulated = 0
    while changes < batch:  # the shop's changes, in steps, until the batch is big enough
        manage("simulate", "--rate", "0", "--count", "250", "--workers", "2")
        _, _, said = manage("cdc_tail", "--slot", "bench_lake", "--output", str(capture))
        changes += changes_in(said)
        simulated += 250
    if store is not None:
        upload(capture, f"{on_s3}/cdc", store)
    print(f"a batch of {changes:,} changes ({simulated:,} simulated actions):")
    for table_format in ("delta", "iceberg"):
        for where, (source, lake) in places.items():
            warehouse = f"{lake}/{table_format}"
            seconds, peak, said = manage(
                "lakehouse_apply", source, "--warehouse", warehouse, "--table-format", table_format
            )
            line(f"  batch applied, {table_format}, {where}", seconds, peak, changes, said)
        if spark:
            seconds, peak, said = manage(
                "lakehouse_apply", str(capture), "--table-format", table_format,
                "--warehouse", str(scratch / f"{table_format}-spark"), "--engine", "spark",
            )  # fmt: skip
            spark_line(f"  batch applied, {table_format}, Spark", seconds, peak, changes, said)
    for table_format in ("delta", "iceberg"):
        for where, (_, lake) in places.items():
            seconds, peak, said = manage(
                "lakehouse_maintain",
                "--warehouse",
                f"{lake}/{table_format}",
                "--tombstone-grace-hours",
                "0",
            )
            line(f"  lakehouse_maintain, {table_format}, {where}", seconds, peak, said=said)
            seconds, peak, _ = manage("lakehouse_verify", "--warehouse", f"{lake}/{table_format}")
            line(f"  lakehouse_verify after it, {table_format}, {where}", seconds, peak)
    sql("SELECT pg_drop_replication_slot('bench_lake')::text")
    shutil.rmtree(capture)


def spark_installed() -> bool:
    from devstack import engines

    try:
        import pyspark  # noqa: F401

        engines.jar_paths()
    except (ImportError, engines.EnginesError):
        print("Spark is not installed (`make engines`): its columns are left out")
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="large 5 10")
    parser.add_argument("--batch", type=int, default=10_000, help="changes in the batch, at least")
    parser.add_argument("--s3", action="store_true", help="from and into the local S3 store too")
    parser.add_argument(
        "--spark-scales",
        default="large 5",
        help="the scales at which Spark applies too (lakehouse_apply --engine spark, local[2]; "
        "needs `make engines`); empty for none",
    )
    parser.add_argument(
        "--deltalake", default="", help="other delta-rs releases to compare, e.g. 1.5.0,1.5.1"
    )
    args = parser.parse_args()
    releases = [version for version in args.deltalake.split(",") if version]
    environments = {release: deltalake_release(release) for release in releases}
    start("bench-lakehouse")
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(throwaway_s3()) if args.s3 else None
        for scale in args.scales.split():
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lake-bench-")))
            spark = scale in args.spark_scales.split() and spark_installed()
            bench_scale(scale, args.batch, scratch, store, environments, spark)


if __name__ == "__main__":
    main()
