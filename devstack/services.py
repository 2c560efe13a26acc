"""What the project's local services share on the command line: `start`, `stop`, `status` and
`destroy` of localdb's PostgreSQL server and of locals3's S3 store. Imports nothing from
Django."""

import time
from typing import Protocol


class LocalService(Protocol):
    def start(self) -> bool: ...
    def stop(self) -> bool: ...
    def status(self) -> str: ...
    def is_running(self) -> bool: ...
    def destroy(self) -> None: ...


def add_lifecycle(commands, what: str) -> None:
    """The four subcommands, on an argparse subparsers object; `what` names the service."""
    commands.add_parser("start", help=f"initialise (first time) and start {what}")
    commands.add_parser("stop", help=f"stop {what}")
    commands.add_parser("status", help="say whether it runs, where, and where its data is")
    commands.add_parser("destroy", help=f"stop {what} and delete its data")


def run_lifecycle(service: LocalService, label: str, command: str) -> int | None:
    """Run one of the four and print its one line; the exit code (status: 3 if not running),
    or None if `command` is not one of them."""
    if command == "start":
        began = time.monotonic()
        started = service.start()
        verb = f"started in {time.monotonic() - began:.1f}s" if started else "already running"
        print(f"{label} {verb}: {service.status()}")
    elif command == "stop":
        print(f"{label} stopped" if service.stop() else f"{label} was not running")
    elif command == "status":
        print(service.status())
        return 0 if service.is_running() else 3
    elif command == "destroy":
        service.destroy()
        print(f"{label} stopped and its data deleted")
    else:
        return None
    return 0
