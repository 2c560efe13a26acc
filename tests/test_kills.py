"""Kill anything at any moment: a command killed with SIGKILL mid-work (as an OOM killer, a
container stop or a closed laptop would) leaves no process of its tree alive and no session
in PostgreSQL within 5 s; then every core table answers a count within 2 s, and the data is
whole. And no reader stalls while a reseed runs; and a lock held by another session is one
line within seconds, never a silent wait."""

import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg2
import pytest
from django.core.management import call_command
from django.db import connection

from core.simulation.runner import newest_moment
from core.storage import location
from core.verify.capture import verify_capture
from tests.conftest import NOW, replicated_shop
from tests.kills import (
    backends,
    command_lines,
    every_table_answers_at_once,
    kill_and_check,
    tagged,
    tree_of,
    wait_for_backend_running,
)
from tests.seeded import (
    ORDERS_NOT_ADDING_UP,
    counts,
    digest,
    invariant_violations,
    slot_is_read,
    subprocess_environment,
    value,
    wait_for,
)
from tests.test_readme import fresh_copy
from tests.test_settings import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def nothing_left_running():
    """Whatever a test started is killed by its pid when the test ends, even if it failed
    before it killed it (its children die with it)."""
    yield
    while STARTED:
        process = STARTED.pop()
        if process.poll() is None:
            process.kill()
            process.wait()


def start(*args: str, application: str, cwd: Path = ROOT, **environment) -> subprocess.Popen:
    """`manage.py ARGS` (or another command, if the first argument is not a manage.py
    command) on the test database, its connections named `application`."""
    command = list(args) if args[0] in ("make",) else [sys.executable, "manage.py", *args]
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=tagged({**subprocess_environment(), **environment}, application),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    STARTED.append(process)
    return process


def seeded(scale: str = "small", seed: int = 3) -> dict[str, str]:
    call_command("seed_all", "--scale", scale, "--seed", str(seed), "--now", NOW.isoformat(),
                 "-v", "0")  # fmt: skip
    return digest()


def test_a_killed_reseed_leaves_no_process_no_lock_and_the_old_data():
    """The reseed's generating processes die with it and drop its connection at once, so
    PostgreSQL rolls its transaction back and lets go of its locks (they used to live on,
    orphaned, holding the connection: every reader of core_tenant waited for them)."""
    before = seeded()
    name = f"reseed-{uuid.uuid4().hex[:8]}"
    reseed = start("seed_all", "--scale", "medium", "--clean", "--seed", "4", application=name)
    wait_for_backend_running(name, "COPY")  # deleted, and writing the new rows
    tree = kill_and_check(reseed, name)
    assert len(tree) >= 3, tree  # the command and its generating processes
    every_table_answers_at_once()
    assert digest() == before


def test_killed_simulate_workers_die_with_it_and_each_action_is_whole():
    seeded()
    name = f"simulate-{uuid.uuid4().hex[:8]}"
    running = start(
        "simulate", "--workers", "4", "--rate", "0", "--count", "1000000", application=name
    )
    orders = value("SELECT count(*) FROM core_order")
    wait_for(lambda: len(backends(name)) >= 4, what="four workers at work")
    wait_for(lambda: value("SELECT count(*) FROM core_order") > orders + 20, what="orders")
    tree = kill_and_check(running, name)
    assert len(tree) >= 5, tree  # the command and its four workers
    every_table_answers_at_once()
    assert value(ORDERS_NOT_ADDING_UP) == 0  # an action is one transaction: none half done
    with connection.cursor() as cursor:
        end = newest_moment(cursor)
    assert invariant_violations(end, one_writer=False) == {}


def test_a_killed_cdc_tail_on_s3_lets_go_of_its_slot_and_a_rerun_completes_it(s3_url):
    with replicated_shop(seed=8):
        capture = f"{s3_url}/cdc"
        name = f"tail-{uuid.uuid4().hex[:8]}"
        arguments = ("cdc_tail", "--slot", "killed", "--output", capture)
        tail = start(*arguments, "--follow", "--batch-seconds", "1", application=name)
        wait_for(lambda: any(b for b in backends(name)), what="the capture's connections")
        changing = start("simulate", "--rate", "50", "--count", "400", application="writer")
        wait_for(
            lambda: slot_is_read("killed") and value("SELECT count(*) FROM core_order") > 0,
            what="a capture at work",
        )
        time.sleep(2)  # batches written meanwhile, and one in hand
        kill_and_check(tail, name)
        assert not slot_is_read("killed")
        every_table_answers_at_once()
        assert changing.wait(timeout=120) == 0, changing.stderr.read()
        rerun = start(*arguments, application=name)
        assert rerun.wait(timeout=300) == 0, rerun.stderr.read()
        reports = verify_capture(connection.get_connection_params(), location(capture))
        assert all(report.same for report in reports.values()), reports


@pytest.mark.skipif(
    subprocess.run(["which", "make"], capture_output=True).returncode != 0,
    reason="needs make (CI installs it)",
)
def test_a_killed_make_demo_leaves_no_step_running(tmp_path):
    """make, then bin/demo, then each step, then a step's own workers: the whole chain dies
    with make."""
    project = tmp_path / "project"
    fresh_copy(project)
    name = f"demo-{uuid.uuid4().hex[:8]}"
    demo = start("make", "-s", "demo", application=name, cwd=project, ACTIONS="100000")
    # The deepest moment of the chain: make, bin/demo, manage.py simulate and its two workers.
    seen: list[str] = []

    def simulating() -> bool:
        assert demo.poll() is None, demo.stderr.read()
        seen[:] = command_lines(tree_of(demo.pid))
        return sum("manage.py simulate" in line for line in seen) >= 3

    try:
        wait_for(simulating, seconds=300, what="the demo's simulation and its workers")
    except AssertionError as error:
        raise AssertionError(f"{error}: {seen}") from None
    wait_for(lambda: len(backends(name)) >= 2, what="the workers' connections")
    kill_and_check(demo, name)  # make, bin/demo, the simulation and its workers: all gone
    every_table_answers_at_once()
    assert value(ORDERS_NOT_ADDING_UP) == 0


@pytest.mark.slow
def test_no_reader_waits_while_a_large_reseed_runs():
    """A reader's count of core_order every 200 ms, all through a --clean reseed at large:
    it sees the old rows until the new ones are whole, then the new, never waiting on the
    reseed's locks."""
    seeded("large", seed=5)
    before = value("SELECT count(*) FROM core_order")
    reseed = start("seed_all", "--scale", "large", "--clean", "--seed", "6", application="big")
    slowest, seen = 0.0, set()
    reader = psycopg2.connect(**connection.get_connection_params())
    reader.autocommit = True
    try:
        with reader.cursor() as cursor:
            while reseed.poll() is None:
                started = time.monotonic()
                cursor.execute("SELECT count(*) FROM core_order")
                seen.add(cursor.fetchone()[0])
                slowest = max(slowest, time.monotonic() - started)
                time.sleep(0.2)
    finally:
        reader.close()
    assert reseed.returncode == 0, reseed.stderr.read()
    after = value("SELECT count(*) FROM core_order")
    assert seen <= {before, after}, seen  # the old rows, or the new, never a mix
    assert slowest < 1, f"a count took {slowest:.2f} s"


def hold_a_lock(table: str) -> tuple[threading.Event, threading.Thread]:
    """Another session takes an ACCESS EXCLUSIVE lock on `table` and keeps it until the event
    is set (as an ALTER TABLE, or a transaction left open, would)."""
    params = connection.get_connection_params()
    taken, release = threading.Event(), threading.Event()

    def holder() -> None:
        other = psycopg2.connect(**{k: v for k, v in params.items() if k != "cursor_factory"})
        try:
            with other.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
                taken.set()
                release.wait(60)
            other.rollback()
        finally:
            other.close()

    thread = threading.Thread(target=holder, daemon=True)
    thread.start()
    assert taken.wait(10)
    return release, thread


def test_a_lock_held_by_another_session_is_one_line_within_seconds(tmp_path):
    with replicated_shop(seed=9):
        capture, lake = str(tmp_path / "cdc"), str(tmp_path / "lake")
        call_command("cdc_tail", "--slot", "locked", "--output", capture, "-v", "0")
        call_command("lakehouse_apply", capture, "--warehouse", lake, "-v", "0")
        release, holder = hold_a_lock("core_tenant")
        try:
            for command in (
                ["seed_all", "--scale", "small", "--clean"],
                ["setup_replication"],
                ["lakehouse_verify", "--warehouse", lake],
            ):
                started = time.monotonic()
                done = subprocess.run(
                    [sys.executable, "manage.py", *command], cwd=ROOT, capture_output=True,
                    text=True, env=subprocess_environment(), timeout=60,
                )  # fmt: skip
                seconds = time.monotonic() - started
                assert done.returncode == 1, (command, done.stderr)
                assert seconds < 10, (command, seconds)
                assert done.stderr.count("\n") == 1, done.stderr
                line = done.stderr.strip()
                assert line.startswith("error: waited 5s for a lock that another session holds")
                assert "AccessExclusiveLock on core_tenant" in line, line
        finally:
            release.set()
            holder.join(timeout=10)
        assert counts()["core_tenant"] > 0  # the reseed changed nothing


def test_the_web_server_bounds_its_statements_and_commands_wait_for_locks_only_so_long():
    def shown(script: str) -> list[str]:
        code = (
            "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'lakehouse.settings');"
            f"{script}; from django.db import connection; cursor = connection.cursor();"
            "cursor.execute('SHOW statement_timeout'); print(cursor.fetchone()[0]);"
            "cursor.execute('SHOW lock_timeout'); print(cursor.fetchone()[0])"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
            env={**subprocess_environment(), "DATABASE_WEB_STATEMENT_TIMEOUT": "7s"}, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert shown("import lakehouse.wsgi") == ["7s", "5s"]
    assert shown("import lakehouse.asgi") == ["7s", "5s"]
    assert shown("django.setup()") == ["0", "5s"]  # a command: a COPY may take minutes
