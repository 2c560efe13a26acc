"""Ctrl-C at a terminal: the running statement is cancelled, the transaction rolls back, and the
command ends with one line (manage.py and core/management/interrupt.py)."""

import os
import signal
import subprocess
import time

import pytest

from manage import INTERRUPTED
from tests.conftest import NOW
from tests.seeded import digest, manage_py, rows, value

pytestmark = pytest.mark.django_db(transaction=True)


def at_a_terminal(*args: str) -> subprocess.Popen:
    """`manage.py ARGS` as a shell runs it in the foreground: in a process group of its own, to
    which Ctrl-C sends SIGINT, with SIGINT's default action whatever ours is."""
    return manage_py(
        *args,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def ctrl_c(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGINT)


def wait_for_statement(like: str, process: subprocess.Popen) -> None:
    """Until another backend of this database runs a statement matching `like`."""
    for _ in range(600):
        running = value(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state = 'active' AND query LIKE %s",
            [like],
        )
        if running:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError(f"no statement like {like!r} started")


def statements_of_others() -> list[tuple]:
    return rows(
        "SELECT state, query FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND state <> 'idle'"
    )


def test_ctrl_c_cancels_a_long_statement_at_once_and_says_so_in_one_line():
    sleeper = at_a_terminal(
        "shell", "-c", "from django.db import connection; connection.cursor().execute("
        "'SELECT pg_sleep(600)')",
    )  # fmt: skip
    wait_for_statement("%pg_sleep%", sleeper)
    ctrl_c(sleeper)
    # Without the cancel it would wait out the ten minutes: communicate() would time out.
    _, err = sleeper.communicate(timeout=60)
    assert sleeper.returncode == 130
    assert err == INTERRUPTED + "\n"
    assert statements_of_others() == []


def test_ctrl_c_during_a_big_seed_leaves_the_database_as_it_was():
    from django.core.management import call_command

    call_command("seed_all", "--scale", "small", "--seed", "3", "--now", NOW.isoformat(),
                 verbosity=0)  # fmt: skip
    before = digest()
    keys = value("SELECT count(*) FROM pg_constraint WHERE contype IN ('f', 'p', 'u')")
    indexes = value("SELECT count(*) FROM pg_indexes WHERE tablename LIKE 'core_%%'")
    seeding = at_a_terminal("seed_all", "--scale", "5", "--clean", "--seed", "4")
    wait_for_statement("COPY core_event%", seeding)
    ctrl_c(seeding)
    _, err = seeding.communicate(timeout=60)
    assert seeding.returncode == 130, err
    assert err == INTERRUPTED + "\n"
    assert statements_of_others() == []
    assert digest() == before
    assert value("SELECT count(*) FROM pg_constraint WHERE contype IN ('f', 'p', 'u')") == keys
    assert value("SELECT count(*) FROM pg_indexes WHERE tablename LIKE 'core_%%'") == indexes


def test_a_command_with_its_own_ctrl_c_handling_keeps_it():
    """`simulate` finishes the transaction in hand and prints its totals; nothing is cancelled."""
    from django.core.management import call_command

    call_command("seed_all", "--scale", "small", "--seed", "3", "--now", NOW.isoformat(),
                 verbosity=0)  # fmt: skip
    events = value("SELECT count(*) FROM core_event")
    simulation = at_a_terminal("simulate", "--rate", "40", "--duration", "60")
    for _ in range(600):  # until it is under way, its own handler set
        if value("SELECT count(*) FROM core_event") > events:
            break
        assert simulation.poll() is None, simulation.communicate()
        time.sleep(0.05)
    ctrl_c(simulation)
    out, err = simulation.communicate(timeout=30)
    assert simulation.returncode == 0, err
    assert "actions," in out
    assert "Traceback" not in err and INTERRUPTED not in err
