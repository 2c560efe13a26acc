"""The seed_* commands: determinism, standalone use, clean, plan, failures and bad input."""

import io
import re
from pathlib import Path
from uuid import UUID

import psycopg2
import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection

from core.seeding.loading import GenerationFailed, delete_all
from core.seeding.seed import seed_all
from tests.conftest import NOW
from tests.seeded import counts, digest, rows, value

pytestmark = pytest.mark.django_db(transaction=True)
WHEN = NOW.isoformat()


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_same_seed_gives_identical_data_whatever_the_batch_size():
    run("seed_all", "--scale", "small", "--seed", "11", "--now", WHEN, "--batch-size", "500")
    first = digest()
    run(
        "seed_all",
        "--scale",
        "small",
        "--seed",
        "11",
        "--now",
        WHEN,
        "--clean",
        "--batch-size",
        "7",
    )
    assert digest() == first
    run("seed_all", "--scale", "small", "--seed", "12", "--now", WHEN, "--clean")
    assert digest()["core_customer"] != first["core_customer"]


def test_plan_prints_exact_counts_and_writes_nothing():
    output = run("seed_all", "--scale", "small", "--seed", "5", "--now", WHEN, "--plan")
    assert sum(counts().values()) == 0
    run("seed_all", "--scale", "small", "--seed", "5", "--now", WHEN)
    for table, count in counts().items():
        assert f"{table:<18} {count:>10,} rows" in output


def test_clean_replaces_the_data_and_reports_what_it_deleted():
    run("seed_all", "--scale", "small", "--seed", "1", "--now", WHEN)
    before = counts()
    output = run("seed_all", "--scale", "small", "--seed", "2", "--now", WHEN, "--clean")
    assert f"deleted {before['core_event']:>10,} rows from core_event" in output
    assert value("SELECT count(*) FROM core_tenant") == counts()["core_tenant"] <= 10


def indexes() -> list[tuple]:
    """Every index and key of the core tables, as PostgreSQL prints its definition."""
    return rows(
        "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE tablename LIKE 'core\\_%%' "
        "UNION ALL SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
        "FROM pg_constraint WHERE conrelid::regclass::text LIKE 'core\\_%%' ORDER BY 1, 2, 3"
    )


def test_a_run_that_fails_half_way_leaves_the_database_as_it_was():
    run("seed_all", "--scale", "small", "--seed", "3", "--now", WHEN)
    before, before_indexes = digest(), indexes()

    def interrupt(table: str, count: int) -> None:
        if table == "core_event":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        seed_all(scale="small", seed=4, now=NOW, clean=True, on_rows=interrupt)
    assert digest() == before
    assert indexes() == before_indexes
    assert (
        value(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid = 'core_event'::regclass"
        )
        == 4
    )


def test_a_failure_in_the_generating_process_rolls_everything_back(monkeypatch):
    run("seed_all", "--scale", "small", "--seed", "3", "--now", WHEN)
    before = digest()

    def broken(**kwargs):
        raise ValueError("generator broke")

    monkeypatch.setattr("core.seeding.seed.subscription_for_customer", broken)
    with pytest.raises(GenerationFailed, match="ValueError: generator broke"):
        seed_all(scale="small", seed=4, now=NOW, clean=True)
    assert digest() == before


def test_a_load_into_empty_tables_builds_the_same_indexes_and_still_refuses_duplicates(
    monkeypatch,
):
    """The indexes, keys and unique constraints set aside for a load into empty tables come
    back as they were; a duplicate key fails their build and rolls the whole load back."""
    before = indexes()
    assert len(before) > 60 and any("WHERE" in definition for _, _, definition in before)
    output = run("seed_all", "--scale", "small", "--seed", "3", "--now", WHEN, "-v", "2")
    assert indexes() == before
    assert re.search(r"around the COPYs: indexes [\d.]+s, foreign keys [\d.]+s, statistics", output)
    seeded = digest()

    duplicate = UUID(int=42)
    monkeypatch.setattr("core.generation.customers.new_uuid", lambda rng: duplicate)
    # A reseed keeps the indexes (no reader waits on it): its COPY meets the duplicate.
    with pytest.raises(psycopg2.errors.UniqueViolation, match="core_customer_pkey"):
        seed_all(scale="small", seed=4, now=NOW, clean=True)
    assert digest() == seeded
    # Into empty tables, the keys are built after the load: their build meets it.
    with connection.cursor() as cursor:
        delete_all(cursor)
    with pytest.raises(IntegrityError, match="core_customer_pkey"):
        seed_all(scale="small", seed=4, now=NOW)
    assert sum(counts().values()) == 0
    assert indexes() == before


def test_the_per_entity_commands_build_a_consistent_world_step_by_step():
    seed = ["--seed", "9", "--now", WHEN]
    run("seed_tenants", "--count", "3", *seed)
    run("seed_customers", "--per-tenant", "40", *seed)
    run("seed_products", "--per-tenant", "20", *seed)
    run("seed_orders", "--per-customer", "5", *seed)
    run("seed_events", "--per-customer", "50", *seed)
    run("seed_subscriptions", "--share", "0.5", *seed)
    run("seed_invoices", *seed)
    assert counts()["core_customer"] == 120
    assert counts()["core_product"] == 60
    assert (
        value("SELECT count(*) FROM core_event WHERE event_type = 'purchase'")
        == counts()["core_order"]
    )
    assert 3 < counts()["core_order"] / 120 < 7
    assert 0.35 < counts()["core_subscription"] / 120 < 0.65
    assert counts()["core_invoice"] > 0
    # Running them again adds to what is there, without clashing with it.
    run("seed_customers", "--per-tenant", "5", *seed)
    run("seed_orders", "--per-customer", "2", *seed)
    run("seed_events", "--per-customer", "10", *seed)
    run("seed_invoices", *seed)
    assert counts()["core_customer"] == 135
    assert (
        value("SELECT count(*) FROM core_event WHERE event_type = 'purchase'")
        == counts()["core_order"]
    )
    assert (
        value(
            "SELECT count(*) FROM (SELECT subscription_id, period_start FROM core_invoice "
            "GROUP BY 1, 2 HAVING count(*) > 1) x"
        )
        == 0
    )


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("seed_customers", "run `bin/manage seed_tenants` first"),
        ("seed_products", "run `bin/manage seed_tenants` first"),
        ("seed_orders", "run `bin/manage seed_tenants` first"),
        ("seed_invoices", "run `bin/manage seed_subscriptions` first"),
    ],
)
def test_missing_prerequisites_name_the_command_to_run_first(command, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        run(command, "--seed", "1")


def test_orders_without_products_say_so():
    run("seed_tenants", "--count", "2", "--seed", "1")
    run("seed_customers", "--per-tenant", "3", "--seed", "1")
    with pytest.raises(CommandError, match=re.escape("run `bin/manage seed_products` first")):
        run("seed_orders", "--seed", "1")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["seed_tenants", "--count", "-1"], "--count: must be at least 1, not -1"),
        (["seed_customers", "--per-tenant", "-5"], "--per-tenant: must be at least 1, not -5"),
        (["seed_products", "--per-tenant", "0"], "--per-tenant: must be at least 1, not 0"),
        (["seed_orders", "--per-customer", "-2"], "--per-customer: must be more than 0, not -2"),
        (["seed_events", "--per-customer", "0"], "--per-customer: must be more than 0, not 0"),
        (["seed_subscriptions", "--share", "1.5"], "--share: must be between 0 and 1, not 1.5"),
        (["seed_subscriptions", "--rate", "1.5"], "--rate: must be between 0 and 1, not 1.5"),
        (["seed_all", "--batch-size", "0"], "--batch-size: must be at least 1, not 0"),
        (["seed_all", "--scale", "huge"], "unknown scale 'huge'"),
        (["seed_all", "--scale", "-2"], "positive number"),
        (["seed_all", "--now", "yesterday"], "--now 'yesterday' is not an ISO date-time"),
        (["seed_all", "--now", "2999-01-01"], "--now '2999-01-01' is in the future"),
        (["seed_customers", "--now", "2999-01-01T00:00Z"], "is in the future"),
    ],
)
def test_bad_input_is_one_clear_line_and_writes_nothing(args, message):
    with pytest.raises(CommandError, match=re.escape(message)) as error:
        run(*args)
    assert "\n" not in str(error.value)
    assert sum(counts().values()) == 0


def test_a_bug_keeps_its_traceback_instead_of_becoming_one_line(monkeypatch):
    """Only bad input is a CommandError; an error in the code itself stays an exception (its
    traceback shown), and the seeding still leaves the database as it was."""
    from core.management.commands import seed_tenants

    def broken(**kwargs):
        raise ValueError("a bug, not bad input")

    monkeypatch.setattr(seed_tenants, "seed_tenants", broken)
    with pytest.raises(ValueError, match="a bug, not bad input"):
        run("seed_tenants")
    assert sum(counts().values()) == 0


def test_summary_says_how_to_repeat_the_run_even_with_the_default_seed_and_now():
    output = run("seed_all", "--scale", "small")
    repeat = re.search(r"\(repeat with (--seed \d+ --now \S+)\)", output)
    assert repeat, output
    first = digest()
    run("seed_all", "--scale", "small", *repeat.group(1).split(), "--clean")
    assert digest() == first


def test_readme_sample_queries_give_sensible_answers():
    run("seed_all", "--scale", "small", "--seed", "21", "--now", WHEN)
    revenue = rows(
        "SELECT t.name, COUNT(DISTINCT o.id) as order_count, SUM(o.total) as total_revenue "
        "FROM core_tenant t LEFT JOIN core_order o ON o.tenant_id = t.id "
        "WHERE o.status = 'completed' GROUP BY t.name ORDER BY total_revenue DESC"
    )
    assert len(revenue) == counts()["core_tenant"]
    top_two = {name for name, _, _ in revenue[:2]}
    assert top_two == {
        name for (name,) in rows("SELECT name FROM core_tenant WHERE tier = 'enterprise'")
    }
    acquisition = rows(
        "SELECT DATE_TRUNC('month', created_at) as month, COUNT(*) as new_customers "
        "FROM core_customer GROUP BY month ORDER BY month"
    )
    assert 6 <= len(acquisition) <= 7
    assert acquisition[-2][1] > acquisition[1][1]  # growth (the first and last months are partial)
    funnel = [
        event
        for event, _ in rows(
            "SELECT event_type, COUNT(*) as event_count FROM core_event GROUP BY event_type "
            "ORDER BY event_count DESC"
        )
    ]
    assert funnel[0] == "page_view" and funnel[1] == "product_view"
    assert funnel.index("add_to_cart") < funnel.index("checkout") < funnel.index("purchase")
    mrr = rows(
        "SELECT t.name, SUM(s.monthly_amount) as mrr FROM core_tenant t "
        "LEFT JOIN core_subscription s ON s.tenant_id = t.id WHERE s.status = 'active' "
        "GROUP BY t.name ORDER BY mrr DESC"
    )
    larger = {
        name for (name,) in rows("SELECT name FROM core_tenant WHERE tier <> 'small_business'")
    }
    assert larger <= {name for name, _ in mrr}  # small shops at small scale may have none active
    assert all(amount > 0 for _, amount in mrr)


def test_the_readme_sample_queries_run_verbatim():
    run("seed_all", "--scale", "small", "--seed", "22", "--now", WHEN)
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = readme.split("```sql\n", 1)[1].split("```", 1)[0]
    statements = [sql for sql in block.split(";") if sql.strip()]
    assert len(statements) == 4
    for sql in statements:
        assert rows(sql), sql


def test_a_bulk_load_leaves_fresh_statistics_and_a_reseed_keeps_every_foreign_key():
    """Planner statistics describe what was loaded (not the empty tables of before), and the
    clean of a reseed, done while the foreign keys are set aside, puts them all back."""
    from django.db import connection

    from core.seeding.loading import foreign_keys

    with connection.cursor() as cursor:
        keys = foreign_keys(cursor)
    run("seed_all", "--scale", "small", "--seed", "3", "--now", WHEN)
    loaded = counts()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reltuples FROM pg_class WHERE relname = ANY(%s)", [list(loaded)]
        )
        estimates = dict(cursor.fetchall())
    assert all(estimates[table] == count for table, count in loaded.items()), estimates
    run("seed_all", "--scale", "small", "--seed", "4", "--now", WHEN, "--clean")
    with connection.cursor() as cursor:
        assert foreign_keys(cursor) == keys
