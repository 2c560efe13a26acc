"""Settings come from the environment and fail clearly; the deploy checks pass."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SECRET_KEY", "DEBUG", "ALLOWED_HOSTS"}
    }
    # A developer's .env must not feed these checks of the bare environment.
    environment.update(DJANGO_ENV_FILE=str(ROOT / "no-such.env"), **env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_secret_key_and_debug_off_start_up_fails_with_one_clear_line():
    result = run_manage("check")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "error: SECRET_KEY is not set: put one in the environment or in .env "
        "(`make up` writes a .env for local use), or set DEBUG=true for development."
    ]


def test_debug_on_works_without_a_secret_key():
    result = run_manage("check", DEBUG="true")
    assert result.returncode == 0, result.stderr


def test_deploy_checks_pass_with_production_environment():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY="x" * 20 + "production-like-secret-key-of-fifty-chars",
        ALLOWED_HOSTS="admin.example.com",
        SECURE_HSTS_SECONDS="31536000",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="true",
        SECURE_HSTS_PRELOAD="true",
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_debug_is_off_unless_set():
    result = run_manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.DEBUG)",
        SECRET_KEY="k" * 50,
    )
    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr


def test_migrations_are_in_step_with_the_models():
    result = run_manage("makemigrations", "--check", "--dry-run", SECRET_KEY="k" * 50)
    assert result.returncode == 0, result.stdout + result.stderr
