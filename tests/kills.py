"""What a kill may leave behind, seen from outside: the processes of a command's tree (walked
in /proc), its backends in PostgreSQL (told by the application name its connections carry),
and whether every core table still answers a count at once."""

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from django.db import connection

from core.generation.rows import TABLE_ROWS
from tests.seeded import wait_for


@dataclass(frozen=True)
class Process:
    pid: int
    started: int  # clock ticks after boot: a pid reused later is another process
    command: str


def stat_of(pid: int) -> tuple[int, int, str] | None:
    """(parent pid, start time, command) of a live process; None if it is gone or a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name_end = text.rindex(")")
    fields = text[name_end + 2 :].split()
    if fields[0] == "Z":  # exited, waiting for its parent to reap it: nothing left running
        return None
    return int(fields[1]), int(fields[19]), text[text.index("(") + 1 : name_end]


def tree_of(root: int) -> set[Process]:
    """`root` and every process descended from it, now."""
    parents = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (found := stat_of(int(name))) is not None:
            parents[int(name)] = found
    tree, frontier = set(), [root]
    while frontier:
        pid = frontier.pop()
        if pid in parents:
            tree.add(Process(pid, parents[pid][1], parents[pid][2]))
            frontier += [child for child, (parent, _, _) in parents.items() if parent == pid]
    return tree


def command_lines(processes: set[Process]) -> list[str]:
    """The command lines of those of `processes` still alive."""
    lines = []
    for process in processes:
        try:
            raw = Path(f"/proc/{process.pid}/cmdline").read_bytes()
        except OSError:
            continue
        lines.append(raw.replace(b"\0", b" ").decode(errors="replace").strip())
    return lines


def still_alive(processes: set[Process]) -> set[Process]:
    alive = set()
    for process in processes:
        found = stat_of(process.pid)
        if found is not None and found[1] == process.started:
            alive.add(process)
    return alive


def backends(application: str) -> list[tuple[int, str, str]]:
    """(pid, state, query) of the server's sessions whose application name is `application`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, coalesce(state, ''), left(query, 60) FROM pg_stat_activity "
            "WHERE application_name = %s",
            [application],
        )
        return cursor.fetchall()


def tagged(environment: dict[str, str], application: str) -> dict[str, str]:
    """The environment with every libpq connection named `application` (PGAPPNAME): the
    command's, and its children's."""
    return {**environment, "PGAPPNAME": application}


def kill_and_check(parent: subprocess.Popen, application: str, *, seconds: float = 5) -> set:
    """SIGKILL the parent, as an OOM killer or a container stop would; then, within
    `seconds`, no process of its tree as it was may be alive and no backend of its
    connections left. Returns the tree, for the caller to say what it held."""
    tree = tree_of(parent.pid)
    assert tree, "the command had already ended"
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    deadline = time.monotonic() + seconds
    while still_alive(tree) or backends(application):
        assert time.monotonic() < deadline, (
            f"{seconds} s after the kill: alive {sorted(still_alive(tree), key=str)}, "
            f"backends {backends(application)}"
        )
        time.sleep(0.1)
    return tree


def every_table_answers_at_once(seconds: float = 2) -> dict[str, int]:
    """`SELECT count(*)` of every core table, each within `seconds` (a statement_timeout, so
    that a wait on a lock fails the test rather than hanging it)."""
    counts = {}
    with connection.cursor() as cursor:
        cursor.execute(f"SET statement_timeout = '{int(seconds * 1000)}ms'")
        try:
            for table in TABLE_ROWS:
                started = time.monotonic()
                cursor.execute(f"SELECT count(*) FROM {table}")
                counts[table] = cursor.fetchone()[0]
                assert time.monotonic() - started < seconds, table
        finally:
            cursor.execute("SET statement_timeout = 0")
    return counts


def wait_for_backend_running(application: str, starting: str, seconds: float = 120) -> None:
    """Until a session of `application` runs a statement starting with `starting`."""
    wait_for(
        lambda: any(
            state == "active" and query.lstrip().upper().startswith(starting)
            for _, state, query in backends(application)
        ),
        seconds,
        what=f"{application} to run {starting}",
    )
