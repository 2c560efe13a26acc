"""What every benchmark script shares: the throwaway server `make` starts, and a line saying
what machine the figures come from."""

import os
import platform
import sys


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
