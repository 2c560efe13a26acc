"""Waiting out a lost database connection: the simulator and cdc_tail both reconnect this way."""

import time
from collections.abc import Callable

# Seconds to wait before the next try: doubled after each failure, up to the last.
BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0)


def wait_before_retry(failures: int, should_stop: Callable[[], bool]) -> bool:
    """Wait the back-off for the `failures`-th failure in a row (0 for the first); False if
    `should_stop()` became true meanwhile (a Ctrl-C while the server is down)."""
    deadline = time.monotonic() + BACKOFF[min(failures, len(BACKOFF) - 1)]
    while time.monotonic() < deadline:
        if should_stop():
            return False
        time.sleep(0.1)
    return True
