"""The README's Spark block (```bash engines) runs as written, in a copy of the project whose
cdc/ is a capture of the session's shop, against the test database; `make test-engines`, which
runs this, is left out."""

import re
import shutil
import subprocess

import pytest

from devstack import engines
from tests.engines.conftest import database_url
from tests.test_readme import ROOT, fresh_copy, new_users_environment

pytestmark = [pytest.mark.engines, pytest.mark.django_db]
BLOCK = re.compile(r"^```bash engines\n(.*?)^```", re.S | re.M)


def engines_commands() -> list[str]:
    commands = []
    for block in BLOCK.findall((ROOT / "README.md").read_text()):
        for line in block.splitlines():
            command = line.split("  #", 1)[0].strip()
            if command and not command.startswith("make test-engines"):
                commands.append(command)
    return commands


def test_the_readmes_spark_block_runs_as_written(captures, tmp_path):
    commands = engines_commands()
    assert any("--engine spark" in command for command in commands)
    project = tmp_path / "project"
    fresh_copy(project)
    (project / ".engines").symlink_to(engines.cache_dir())  # installed once, like .venv
    shutil.copytree(captures["parquet"], project / "cdc")
    environment = {
        **new_users_environment(),
        "SECRET_KEY": "test-only-" + "x" * 40,
        "DATABASE_URL": database_url(),
        "LAKEHOUSE_STATE_DIR": str(tmp_path / "state"),
    }
    for command in commands:
        done = subprocess.run(
            ["bash", "-c", command], cwd=project, env=environment, capture_output=True,
            text=True, timeout=900,
        )  # fmt: skip
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        if "--engine spark" in command:
            assert "(Spark, local[2]" in done.stdout, done.stdout
    assert done.stdout.strip().endswith("lakehouse = source"), done.stdout
