"""CDC benchmark, on a throwaway server and a throwaway S3 store (`make bench-cdc`,
`make bench-cdc SCALE=10`):

1. Speed: the same changes (an unthrottled `simulate` run) drained from five slots, by
   `cdc_tail` writing CSV and Parquet to a folder, the same to the local S3 store, and by
   PostgreSQL's `pg_recvlogical` (which only writes test_decoding's text to a file):
   changes/s, the ratio to pg_recvlogical, and S3's time against the folder's.
2. Memory: the peak resident memory of `cdc_tail --output` doing the full load of `--scale`
   SCALE (into a folder and into S3), of `verify_cdc` on that capture, and of `cdc_tail`
   draining one transaction of about 500,000 changes (a `seed_all --clean` that deletes and
   reinserts 250,000 rows).

Each command runs in its own process; its peak memory is the kernel's ru_maxrss for it.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

from machine import machine_line, throwaway_database_url, throwaway_s3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SECRET_KEY", "benchmark-only-" + "x" * 40)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lakehouse.settings")
os.environ["DJANGO_ENV_FILE"] = "/nonexistent"
NOW = "2026-10-01T00:00:00Z"
# Rows of a world whose seed_all --clean makes one ~500,000-change transaction.
HALF_MILLION_SCALE = "0.42"


def manage(*args: str, env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run a manage.py command in its own process (with `env` added to the environment):
    (seconds, peak MB, what it printed: stdout, then stderr)."""
    probe = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stderr.write(done.stdout + done.stderr)\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(peak)\n"
        "sys.exit(done.returncode)\n"
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", probe, sys.executable, "manage.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{done.stderr}")
    return seconds, int(done.stdout.strip().splitlines()[-1]) / 1024, done.stderr


def sql(query: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(query)
        return cursor.fetchone()[0]


def changes_in(stderr: str) -> int:
    line = next(line for line in stderr.splitlines() if " changes" in line and "from" in line)
    return int(line.split(" changes", 1)[0].replace(",", ""))


def recvlogical(slot: str, until: str, output: Path) -> float:
    from devstack.localdb import pg_bin_candidates

    client = next(
        path
        for path in (Path(folder) / "pg_recvlogical" for folder in pg_bin_candidates())
        if path.exists()
    )

    url = urlparse(os.environ["DATABASE_URL"])
    environment = {**os.environ, "PGPASSWORD": url.password or ""}
    started = time.monotonic()
    subprocess.run(
        [
            str(client),
            "-h", url.hostname, "-p", str(url.port), "-U", url.username,
            "-d", url.path.lstrip("/"), "--slot", slot, "--start", "--no-loop",
            "-E", until, "-o", "include-timestamp=on", "-f", str(output),
        ],
        env=environment,
        check=True,
    )  # fmt: skip
    return time.monotonic() - started


# Where each drain writes: a folder, or the throwaway S3 store's bucket.
TARGETS = {"disk": None, "s3": "s3://lakehouse/bench-cdc"}


def output_of(target: str, scratch: Path, name: str) -> str:
    return f"{TARGETS[target]}/{name}" if TARGETS[target] else str(scratch / name)


def speed(actions: int, scratch: Path) -> None:
    manage("seed_all", "--scale", "medium", "--clean", "--seed", "2026", "--now", NOW)
    drains = [(target, data_format) for data_format in ("csv", "parquet") for target in TARGETS]
    for target, data_format in drains:
        manage("cdc_tail", "--slot", f"bench_{target}_{data_format}", "--output",
               output_of(target, scratch, data_format), "--data-format", data_format)  # fmt: skip
    sql("SELECT 1 FROM pg_create_logical_replication_slot('bench_recv', 'test_decoding')")
    manage("simulate", "--rate", "0", "--count", str(actions), "--seed", "5", "--workers", "2")
    until = sql("SELECT pg_current_wal_lsn()::text")
    recv_seconds = recvlogical("bench_recv", until, scratch / "recv.txt")
    lines = (scratch / "recv.txt").read_text().count("\ntable ") + 1
    print(f"\n1. Draining the same changes ({lines:,} row changes of {actions:,} actions):")
    print(f"   {'reader':<26} {'seconds':>8} {'changes/s':>10} {'vs pg_recvlogical':>18} "
          f"{'S3 / disk':>10}")  # fmt: skip
    recv_rate = lines / recv_seconds
    print(f"   {'pg_recvlogical':<26} {recv_seconds:>8.2f} {recv_rate:>10,.0f} {1:>18.2f}")
    on_disk = {}
    for target, data_format in drains:
        seconds, _, err = manage("cdc_tail", "--slot", f"bench_{target}_{data_format}",
                                 "--output", output_of(target, scratch, data_format))  # fmt: skip
        rate = changes_in(err) / seconds
        label = f"cdc_tail {data_format} to {target}"
        against = f"{seconds / on_disk[data_format]:>10.2f}" if target == "s3" else ""
        on_disk.setdefault(data_format, seconds)
        print(f"   {label:<26} {seconds:>8.2f} {rate:>10,.0f} {rate / recv_rate:>18.2f} {against}")
    print("   (cdc_tail's seconds include starting Python and Django, about 0.4 s)")
    for target, data_format in drains:
        sql(f"SELECT pg_drop_replication_slot('bench_{target}_{data_format}')::text")
    sql("SELECT pg_drop_replication_slot('bench_recv')::text")


def memory(scale: str, scratch: Path) -> None:
    print("\n2. Peak memory (each command in its own process):")
    seconds, _, _ = manage("seed_all", "--scale", scale, "--clean", "--seed", "7", "--now", NOW)
    from core.generation.rows import TABLE_ROWS

    rows = sum(int(sql(f"SELECT count(*) FROM {table}")) for table in TABLE_ROWS)
    print(f"   data: --scale {scale}, {rows:,} rows (seeded in {seconds:.0f} s)")
    for target, data_format in (("disk", "parquet"), ("s3", "parquet"), ("disk", "csv")):
        folder = output_of(target, scratch, f"load_{data_format}")
        slot = f"load_{target}_{data_format}"
        seconds, peak, _ = manage("cdc_tail", "--slot", slot, "--output", folder,
                                  "--data-format", data_format)  # fmt: skip
        what = f"{data_format} to {target}"
        print(f"   cdc_tail full load ({what}): {seconds:6.1f} s, peak {peak:6.0f} MB, "
              f"{rows / seconds:,.0f} rows/s")  # fmt: skip
        seconds, peak, _ = manage("verify_cdc", folder)
        print(f"   verify_cdc ({what}):        {seconds:6.1f} s, peak {peak:6.0f} MB")
        sql(f"SELECT pg_drop_replication_slot('{slot}')::text")
        if target == "disk":
            shutil.rmtree(folder)
    manage("seed_all", "--scale", HALF_MILLION_SCALE, "--clean", "--seed", "8", "--now", NOW)
    manage("cdc_tail", "--slot", "big_txn", "--output", str(scratch / "big"))
    manage("seed_all", "--scale", HALF_MILLION_SCALE, "--clean", "--seed", "9", "--now", NOW)
    seconds, peak, err = manage("cdc_tail", "--slot", "big_txn", "--output", str(scratch / "big"))
    print(f"   cdc_tail draining one transaction of {changes_in(err):,} changes: "
          f"{seconds:.1f} s, peak {peak:.0f} MB")  # fmt: skip
    sql("SELECT pg_drop_replication_slot('big_txn')::text")


def start(make_target: str) -> None:
    """On the throwaway server `make` started: Django, the schema, the publication, and a line
    saying what machine this is."""
    throwaway_database_url(make_target)
    import django

    django.setup()
    manage("migrate", "-v", "0")
    manage("setup_replication")
    print(f"{machine_line()}, PostgreSQL {sql('SHOW server_version')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="large", help="the full load's scale (default large)")
    parser.add_argument("--actions", type=int, default=20_000, help="simulate actions to drain")
    parser.add_argument("--speed-only", action="store_true", help="leave out the memory part")
    args = parser.parse_args()
    start("bench-cdc")
    with tempfile.TemporaryDirectory(prefix="cdc-bench-") as scratch, throwaway_s3():
        speed(args.actions, Path(scratch))
        if not args.speed_only:
            memory(args.scale, Path(scratch))


if __name__ == "__main__":
    main()
