"""Lakehouse benchmark, on a throwaway server and S3 store (`make bench-lakehouse`,
`SCALE=medium` to go quicker): a capture of SCALE (full load, then the changes of ACTIONS
simulated actions in several batches) applied to Delta and to Iceberg tables by
`lakehouse_apply`, each in its own process, from a folder into a folder and from the local S3
store into it (the same files, uploaded): seconds, rows/s, peak memory and S3's time against
the folder's; and as the reference, DuckDB rebuilding the same final state in memory from the
same files.

`--deltalake 1.5.0,1.5.1` also applies the capture with those delta-rs releases (each installed
once into bench/deltalake/VERSION, from the package index), to compare their memory with the
pinned one's: one release is reported to need several times its predecessor's for a MERGE."""

import argparse
import os
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

from cdc_bench import NOW, manage, sql, start  # noqa: E402  (the same probe of peak memory)
from machine import throwaway_s3  # noqa: E402

REBUILD = """
import sys, time, duckdb
capture = sys.argv[1]
duck = duckdb.connect()
started = time.monotonic()
rows = 0
for table in sys.argv[2:]:
    files = f"{capture}/public/{table}/**/*.parquet"
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


def ratio(seconds: dict[str, float], where: str) -> str:
    return f" {seconds['s3'] / seconds['disk']:>10.2f}" if where == "s3" else ""


def deltalake_release(version: str) -> dict[str, str]:
    """The environment that makes `import deltalake` load that release."""
    folder = ROOT / "bench" / "deltalake" / version
    if not (folder / "deltalake").exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
             str(folder), f"deltalake=={version}"],
            check=True,
        )  # fmt: skip
    return {"PYTHONPATH": str(folder)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="large")
    parser.add_argument("--actions", type=int, default=10_000)
    parser.add_argument(
        "--deltalake", default="", help="other delta-rs releases to compare, e.g. 1.5.0,1.5.1"
    )
    args = parser.parse_args()
    releases = [version for version in args.deltalake.split(",") if version]
    environments = {release: deltalake_release(release) for release in releases}
    start("bench-lakehouse")
    from core.generation.rows import TABLE_ROWS

    with tempfile.TemporaryDirectory(prefix="lakehouse-bench-") as scratch:
        capture = Path(scratch) / "cdc"
        manage("seed_all", "--scale", args.scale, "--clean", "--seed", "2026", "--now", NOW)
        manage("cdc_tail", "--slot", "bench_lake", "--output", str(capture))
        for _ in range(4):  # four batches of changes
            manage("simulate", "--rate", "0", "--count", str(args.actions // 4), "--workers", "2")
            manage("cdc_tail", "--slot", "bench_lake", "--output", str(capture))
        sql("SELECT pg_drop_replication_slot('bench_lake')::text")
        files = sum(1 for path in (capture / "public").rglob("*.parquet"))
        rows, seconds, peak = rebuild_in_duckdb(capture, list(TABLE_ROWS))
        print(f"capture: --scale {args.scale}, {rows:,} rows in {files} Parquet files; "
              f"deltalake {version('deltalake')}, pyiceberg {version('pyiceberg')}, "
              f"duckdb {version('duckdb')}")  # fmt: skip
        print(f"\n{'':<34} {'seconds':>8} {'rows/s':>10} {'peak memory':>12} {'S3 / disk':>10}")
        print(f"{'DuckDB rebuild in memory':<34} {seconds:>8.1f} {rows / seconds:>10,.0f} "
              f"{peak:>9.0f} MB")  # fmt: skip
        with throwaway_s3() as store:
            on_s3 = "s3://lakehouse/bench-lake"
            upload(capture, f"{on_s3}/cdc", store)
            places = {"disk": (str(capture), scratch), "s3": (f"{on_s3}/cdc", on_s3)}
            for table_format in ("delta", "iceberg"):
                applied, verified = {}, {}
                for where, (source, lake) in places.items():
                    warehouse = f"{lake}/{table_format}"
                    seconds, peak, _ = manage("lakehouse_apply", source, "--warehouse",
                                              warehouse, "--format", table_format)  # fmt: skip
                    applied[where] = seconds
                    label = f"lakehouse_apply {table_format}, {where}"
                    print(f"{label:<34} {seconds:>8.1f} {rows / seconds:>10,.0f} {peak:>9.0f} MB"
                          + ratio(applied, where))  # fmt: skip
                    seconds, peak, _ = manage("lakehouse_verify", "--warehouse", warehouse)
                    verified[where] = seconds
                    label = f"lakehouse_verify {table_format}, {where}"
                    print(f"{label:<34} {seconds:>8.1f} {'':>10} {peak:>9.0f} MB"
                          + ratio(verified, where))  # fmt: skip
        for release, environment in environments.items():
            warehouse = Path(scratch) / f"delta-{release}"
            seconds, peak, _ = manage("lakehouse_apply", str(capture), "--warehouse",
                                      str(warehouse), env=environment)  # fmt: skip
            label = f"lakehouse_apply, deltalake {release}"
            print(f"{label:<34} {seconds:>8.1f} {rows / seconds:>10,.0f} {peak:>9.0f} MB")
    print("(lakehouse_apply and _verify include starting Python and Django, about 0.5 s)")


if __name__ == "__main__":
    main()
