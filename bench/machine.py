"""What every benchmark script shares: the throwaway server `make` starts, a throwaway S3
store, and a line saying what machine the figures come from."""

import contextlib
import os
import platform
import sys
from pathlib import Path


def throwaway_database_url(make_target: str) -> str:
    """DATABASE_URL of the throwaway server; without it, the one line that says how to run."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        sys.exit(
            f"error: run through `make {make_target}` (it sets DATABASE_URL to a throwaway server)"
        )
    return url


def machine_line() -> str:
    return (
        f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}"
    )


@contextlib.contextmanager
def throwaway_s3():
    """A throwaway local S3 store for the benchmark, the AWS_* settings pointing at it."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from devstack.locals3 import ephemeral_store

    with ephemeral_store() as store:
        os.environ.update(store.environment())
        yield store
