"""Seeding benchmark: each scale into a fresh database, then a `--clean` reseed of it started
right after, plus plain Django bulk_create for scale.

    make bench                      # small medium large 5 10, on a throwaway server
    make bench SCALES="large 16"    # any scales

Prints rows, seconds and rows/s per table and in total, the steps around the COPYs, and peak
memory of the loading and the generating processes; then a summary with each scale's pace
against `large`'s and each reseed's time against its load's. Per-table seconds are the time
spent COPYing that table's rows; generation runs beside them in other processes, so the total
is the wall-clock time of the whole run (indexes, foreign keys and ANALYZE included), not
their sum.
"""

import json
import os
import resource
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from machine import machine_line, throwaway_database_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
NOW = "2026-11-01T00:00:00+00:00"
# The benchmark's processes only talk to a throwaway database; they sign nothing.
os.environ.setdefault("SECRET_KEY", "benchmark-only-" + "x" * 40)
SEED = 2026


def database_url(base: str, name: str) -> str:
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{name}"))


def admin_execute(base: str, sql: str) -> None:
    import psycopg2

    connection = psycopg2.connect(database_url(base, "postgres"))
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(sql)
    connection.close()


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lakehouse.settings")
    import django

    django.setup()


def child_seed(scale: str, clean: bool) -> dict:
    """Runs in a fresh process: seed_all into the database DATABASE_URL names."""
    setup_django(os.environ["DATABASE_URL"])
    from core.seeding.seed import seed_all

    result = seed_all(scale=scale, seed=SEED, now=datetime.fromisoformat(NOW), clean=clean)
    return {
        "counts": result.counts,
        "copy_seconds": result.copy_seconds,
        "step_seconds": result.step_seconds,
        "seconds": result.seconds,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        # seed_all generates in a child process of its own.
        "generator_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def child_bulk_create(scale: str) -> dict:
    """The same customers, written the plain Django way: model instances and bulk_create."""
    setup_django(os.environ["DATABASE_URL"])
    from core.generation.clock import Timeline
    from core.generation.customers import customer_rows
    from core.generation.pools import pools_for
    from core.generation.profiles import TIERS, scale_factor, tier_mix
    from core.generation.randomness import derive_rng
    from core.generation.tenants import tenant_rows
    from core.models import Customer, Tenant
    from core.seeding.seed import tenant_ref

    clock, pools = Timeline(datetime.fromisoformat(NOW)), pools_for(SEED)
    tiers = tier_mix(8 + derive_rng(SEED, "world").randint(0, 2))
    tenants = tenant_rows(seed=SEED, tiers=tiers, clock=clock, pools=pools)
    Tenant.objects.bulk_create(Tenant(**row._asdict()) for row in tenants)
    started, written = time.monotonic(), 0
    for index, row in enumerate(tenants):
        sizes = derive_rng(SEED, "tenant-size", index)
        sizes.randint(*TIERS[row.tier].products)
        count = max(1, round(sizes.randint(*TIERS[row.tier].customers) * scale_factor(scale)))
        customers = customer_rows(
            seed=SEED, tenant=tenant_ref(row), numbers=range(1, count + 1), clock=clock, pools=pools
        )
        Customer.objects.bulk_create(
            (Customer(**customer._asdict()) for customer in customers), batch_size=1000
        )
        written += count
    return {"rows": written, "seconds": time.monotonic() - started}


def run_child(kind: str, scale: str, url: str, *flags: str) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, f"--{kind}", scale, *flags],
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def fresh_database(base: str, name: str, template: str) -> str:
    admin_execute(base, f'DROP DATABASE IF EXISTS "{name}"')
    admin_execute(base, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return database_url(base, name)


def steps(result: dict) -> str:
    done = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in result["step_seconds"].items())
    return f"around the COPYs: {done}"


def print_result(result: dict) -> None:
    print(f"  {'table':<18} {'rows':>11} {'copy s':>8} {'rows/s':>10}")
    for table, count in result["counts"].items():
        seconds = result["copy_seconds"][table]
        rate = count / seconds if seconds else 0
        print(f"  {table:<18} {count:>11,} {seconds:>8.2f} {rate:>10,.0f}")
    total = sum(result["counts"].values())
    print(
        f"  {'total':<18} {total:>11,} {result['seconds']:>8.2f} "
        f"{total / result['seconds']:>10,.0f}   peak memory {result['peak_mb']:.0f} MB "
        f"(loader), {result['generator_peak_mb']:.0f} MB (each generator)"
    )
    print(f"  {steps(result)}")


def print_summary(summary: list[tuple[str, int, float, float]]) -> None:
    paces = {scale: rows / seconds for scale, rows, seconds, _ in summary}
    print("\nsummary")
    print(f"  {'scale':<8} {'rows':>11} {'load s':>8} {'rows/s':>10} {'vs large':>9} "
          f"{'reseed s':>9} {'reseed/load':>12}")  # fmt: skip
    for scale, rows, seconds, reseed in summary:
        against = f"{paces[scale] / paces['large']:.2f}" if "large" in paces else "-"
        print(
            f"  {scale:<8} {rows:>11,} {seconds:>8.1f} {paces[scale]:>10,.0f} {against:>9} "
            f"{reseed:>9.1f} {reseed / seconds:>12.2f}"
        )


def main(scales: list[str]) -> None:
    base = throwaway_database_url("bench")
    template = "bench_template"
    admin_execute(base, f'DROP DATABASE IF EXISTS "{template}"')
    admin_execute(base, f'CREATE DATABASE "{template}"')
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"],
        env={**os.environ, "DATABASE_URL": database_url(base, template)},
        check=True,
    )
    print(f"{machine_line()}; seed {SEED}, now {NOW}")
    summary = []
    for scale in scales:
        name = f"bench_{scale}".replace(".", "_")
        url = fresh_database(base, name, template)
        result = run_child("seed", scale, url)
        print(f"\n--scale {scale}: seed_all into an empty database")
        print_result(result)
        reseed = run_child("seed", scale, url, "--clean")
        # Dropped at once: autovacuum analysing it would compete with the next measurement.
        admin_execute(base, f'DROP DATABASE "{name}"')
        print(f"  then seed_all --clean, started right after: {reseed['seconds']:.1f}s")
        print(f"    {steps(reseed)}")
        name = f"bench_{scale}_orm".replace(".", "_")
        orm = run_child("bulk-create", scale, fresh_database(base, name, template))
        admin_execute(base, f'DROP DATABASE "{name}"')
        print(
            f"  for comparison, Django bulk_create of the same {orm['rows']:,} customers: "
            f"{orm['seconds']:.2f}s, {orm['rows'] / orm['seconds']:,.0f} rows/s"
        )
        rows = sum(result["counts"].values())
        summary.append((scale, rows, result["seconds"], reseed["seconds"]))
    print_summary(summary)
    admin_execute(base, f'DROP DATABASE IF EXISTS "{template}"')


if __name__ == "__main__":
    if sys.argv[1:2] == ["--seed"]:
        print(json.dumps(child_seed(sys.argv[2], clean="--clean" in sys.argv[3:])))
    elif sys.argv[1:2] == ["--bulk-create"]:
        print(json.dumps(child_bulk_create(sys.argv[2])))
    else:
        main(sys.argv[1:] or ["small", "medium", "large", "5", "10"])
