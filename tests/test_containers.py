"""docker compose and the Dockerfile, checked offline (no Docker engine on our machines)."""

import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent


def compose() -> dict:
    return YAML(typ="safe").load((ROOT / "docker-compose.yml").read_text())


def test_compose_file_is_valid_against_the_compose_specification():
    result = subprocess.run(
        [
            Path(sys.executable).parent / "check-jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(ROOT / "docker-compose.yml"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_postgres_service_has_logical_wal_replication_user_health_check_and_volume():
    postgres = compose()["services"]["postgres"]
    flags = " ".join(postgres["command"])
    for setting in ("wal_level=logical", "max_replication_slots=8", "max_wal_senders=8"):
        assert setting in flags
    assert postgres["environment"]["POSTGRES_DB"] == "lakehouse_poc"
    assert postgres["environment"]["POSTGRES_USER"] == "lakehouse_user"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(volume.startswith("pgdata:") for volume in postgres["volumes"])
    assert "pgdata" in compose()["volumes"]
    init_script = (ROOT / "postgres/initdb.d/10-logical-replication.sh").read_text()
    assert "WITH REPLICATION" in init_script


def test_django_service_waits_for_a_healthy_database_and_holds_no_secret():
    django = compose()["services"]["django"]
    assert django["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert django["environment"]["SECRET_KEY"].startswith("${SECRET_KEY:?")
    assert "${POSTGRES_PASSWORD:?" in django["environment"]["DATABASE_URL"]


def test_dockerfile_uses_a_slim_image_and_a_non_root_user_and_holds_no_secret():
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    assert lines[[line.startswith("FROM") for line in lines].index(True)].endswith("-slim")
    users = [line.split()[1] for line in lines if line.startswith("USER")]
    assert users and users[-1] not in {"root", "0"}
    assert not any("SECRET_KEY" in line or "PASSWORD" in line for line in lines)
