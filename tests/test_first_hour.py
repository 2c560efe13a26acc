"""What a person meets before things work: the project not set up yet, the database down.
Each is one line that says what to do, never a traceback, and nothing waits for ever."""

import hashlib
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


def test_make_serve_with_the_database_down_is_one_line_not_a_server_that_never_listens():
    nowhere = f"postgres://lakehouse:x@127.0.0.1:{free_port()}/lakehouse_poc"
    done = run(str(ROOT / "bin" / "serve"), DATABASE_URL=nowhere)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "PostgreSQL" in done.stderr and "running" in done.stderr


def test_a_venv_made_by_another_user_is_made_again(tmp_path):
    """A project copied from another user: its .venv links to a Python this user cannot run.
    bin/bootstrap makes it again (here with a stand-in for `python3 -m venv`, whose packages
    are already the requirements', so nothing is downloaded)."""
    project = tmp_path / "project"
    (project / "bin").mkdir(parents=True)
    shutil.copy(ROOT / "bin" / "bootstrap", project / "bin")
    shutil.copy(ROOT / "requirements.txt", project)
    (project / ".venv" / "bin").mkdir(parents=True)
    (project / ".venv" / "bin" / "python").symlink_to("/home/someone-else/.pyenv/bin/python3")
    wanted = hashlib.sha256((ROOT / "requirements.txt").read_bytes()).hexdigest()
    stand_in = tmp_path / "python3"
    stand_in.write_text(
        "#!/usr/bin/env bash\n"
        'if [ "$1 $2" = "-m venv" ]; then\n'
        f'  mkdir -p "$3/bin" && ln -s {sys.executable} "$3/bin/python"\n'
        f'  echo {wanted} > "$3/.requirements.sha256"; exit 0\n'
        "fi\n"
        f'exec {sys.executable} "$@"\n'
    )
    stand_in.chmod(0o755)
    done = run("bin/bootstrap", cwd=project, PYTHON=str(stand_in))
    assert done.returncode == 0, done.stderr
    assert "Making .venv again: the one here does not run" in done.stdout
    assert run(".venv/bin/python", "-c", "", cwd=project).returncode == 0


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make (CI installs it)")
@pytest.mark.parametrize(
    ("target", "folder"), [("db-status", "LOCALDB_DIR"), ("s3-status", "LOCALS3_DIR")]
)
def test_a_stopped_service_is_an_answer_of_make_status_not_a_failure(target, folder, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "Makefile", project)
    (project / ".venv").symlink_to(ROOT / ".venv")
    (project / "devstack").symlink_to(ROOT / "devstack")
    done = run("make", "-s", target, cwd=project, **{folder: str(tmp_path / "none")})
    assert done.returncode == 0, done.stderr
    assert "not initialised" in done.stdout
