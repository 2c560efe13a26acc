"""The README runs as written: its shell blocks, in order, in a copy of the project with nothing
set up yet (no .env, no database, no S3 store), as a new user would run them. The two commands
that run until Ctrl-C (`simulate`, `cdc_tail --follow`) run side by side for a few seconds and
are then stopped with Ctrl-C, as a person would. `make test` itself is left out."""

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.seeded import wait_for

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)
UNTIL_CTRL_C = "(Ctrl-C to stop)"
LEFT_OUT = ("make test",)  # the suite runs this test


def readme_commands() -> list[str]:
    commands = []
    for block in BLOCK.findall((ROOT / "README.md").read_text()):
        for line in block.splitlines():
            command = line.split("  #", 1)[0].strip() if UNTIL_CTRL_C not in line else line
            if command and not command.startswith("#") and not command.startswith(LEFT_OUT):
                commands.append(command)
    return commands


def fresh_copy(target: Path) -> None:
    """The project's files as a clone has them (tracked, or new and not ignored), and the
    project's .venv (installing it again would take minutes and test pip, not the README)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    for name in listed:
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(ROOT / ".venv")


def new_users_environment() -> dict[str, str]:
    """No DATABASE_URL, no AWS_* settings, nothing of the test session's."""
    kept = ("PATH", "HOME", "LANG", "LC_ALL", "TERM", "USER", "TMPDIR")
    return {name: os.environ[name] for name in kept if name in os.environ}


@pytest.mark.slow
def test_the_readme_runs_as_written(tmp_path):
    project = tmp_path / "project"
    fresh_copy(project)
    environment = new_users_environment()
    log = tmp_path / "log"
    log.mkdir()
    running: list[subprocess.Popen] = []

    def run(command: str) -> None:
        done = subprocess.run(
            ["bash", "-c", command], cwd=project, env=environment, capture_output=True,
            text=True, timeout=900, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"

    def stop_with_ctrl_c() -> None:
        # The capture has made its full load and both have been at it for a moment.
        wait_for(lambda: (project / "cdc" / "capture.json").exists(), what="cdc_tail")
        time.sleep(3)  # changes, for the capture to take while it follows
        for process in running:
            os.killpg(process.pid, signal.SIGINT)
        for process in running:
            assert process.wait(timeout=60) == 0, process.output.read_text()
        running.clear()

    try:
        for command in readme_commands():
            if UNTIL_CTRL_C in command:
                output = log / f"{len(running)}.log"
                with output.open("w") as out:
                    process = subprocess.Popen(
                        ["bash", "-c", f"exec {command.split('#', 1)[0]}"], cwd=project,
                        env=environment, stdout=out, stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL, start_new_session=True,
                    )  # fmt: skip
                process.output = output
                running.append(process)
                continue
            if running:
                stop_with_ctrl_c()
            run(command)
    finally:
        for process in running:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        # The copy's own servers, stopped by their pids.
        for service in ("devstack.localdb", "devstack.locals3"):
            subprocess.run(
                [str(project / ".venv/bin/python"), "-m", service, "destroy"], cwd=project,
                env=environment, capture_output=True, timeout=120,
            )  # fmt: skip
