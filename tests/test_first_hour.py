"""What a person meets before things work: the project not set up yet, the database down.
Each is one line that says what to do, never a traceback, and nothing waits for ever."""

import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import call_command

from devstack.localdb import free_port
from tests.conftest import replicated_shop
from tests.seeded import subprocess_environment

ROOT = Path(__file__).resolve().parent.parent


def run(*command: str, cwd: Path = ROOT, **environment: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        list(command), cwd=cwd, env={**subprocess_environment(), **environment},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def fails_in_one_line_without_the_database(*command: str) -> None:
    nowhere = f"postgres://lakehouse:x@127.0.0.1:{free_port()}/lakehouse_poc"
    started = time.monotonic()
    done = run(sys.executable, "manage.py", *command, DATABASE_URL=nowhere)
    assert time.monotonic() - started < 30
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "PostgreSQL" in done.stderr and "running" in done.stderr


@pytest.mark.parametrize(
    "command",
    [["check_replication"], ["migrate"], ["cdc_tail"]],  # a drain gives up after a few tries
    ids=lambda command: command[0],
)
def test_the_database_down_is_one_line(command):
    fails_in_one_line_without_the_database(*command)


@pytest.mark.django_db(transaction=True)
def test_the_database_down_is_one_line_for_the_checks_of_a_capture_and_a_lake(tmp_path):
    capture, lake = str(tmp_path / "cdc"), str(tmp_path / "lake")
    with replicated_shop(seed=3):
        call_command("cdc_tail", "--output", capture, stdout=io.StringIO(), stderr=io.StringIO())
        call_command("lakehouse_apply", capture, "--warehouse", lake, stdout=io.StringIO())
        fails_in_one_line_without_the_database("verify_cdc", capture)
        fails_in_one_line_without_the_database("lakehouse_verify", "--warehouse", lake)
        fails_in_one_line_without_the_database("lakehouse_query", "--warehouse", lake)


def test_manage_py_without_the_projects_packages_says_make_up_first():
    # -S: no site-packages, as with a Python that is not the project's .venv
    done = run(sys.executable, "-S", "manage.py", "check")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: the project's packages are not installed here: run `make up` first (it makes "
        ".venv), then `bin/manage COMMAND`"
    ]


def test_bin_manage_runs_from_anywhere_and_says_make_up_first_without_a_venv(tmp_path):
    done = run(str(ROOT / "bin" / "manage"), "help", "cdc_tail", cwd=tmp_path)
    assert done.returncode == 0 and "--create-slot" in done.stdout
    (tmp_path / "bin").mkdir()
    shutil.copy(ROOT / "bin" / "manage", tmp_path / "bin")
    done = run(str(tmp_path / "bin" / "manage"), "help", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == "error: run `make up` first (it makes .venv and the database)"


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make (CI installs it)")
@pytest.mark.parametrize("target", ["serve", "db-status", "db-stop", "s3-status", "lint"])
def test_make_targets_before_make_up_say_make_up_first(target, tmp_path):
    shutil.copy(ROOT / "Makefile", tmp_path)
    done = run("make", "-s", target, cwd=tmp_path, PATH=os.environ["PATH"])
    assert done.returncode != 0
    assert "error: run `make up` first" in done.stderr
    assert "No such file" not in done.stderr
