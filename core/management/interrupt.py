"""Ctrl-C that stops a running statement, for every management command.

While libpq waits for PostgreSQL it retries the wait when a signal interrupts it, so Python's
KeyboardInterrupt would only be raised once the statement had finished, minutes later for a big
COPY or DELETE. Here a SIGINT asks the server to cancel what the main thread's connections are
running (from a thread that hears the signal through Python's wake-up file, as the main thread
may be blocked in libpq). The statement fails at once, its transaction rolls back as for any
error, and `manage.py` prints one line for it. With no statement running, Ctrl-C raises
KeyboardInterrupt as usual.

psycopg2's other way, a wait callback, is global to the process and forbids COPY, which seeding
and the capture depend on. Commands that set a SIGINT handler of their own (`simulate`,
`cdc_tail`: Ctrl-C lets them finish the transaction or batch in hand) are left to it.
"""

import contextlib
import signal
import socket
import threading
from collections.abc import Iterator

import psycopg2
import psycopg2.extensions


class Interruption:
    """What `cancelling_on_interrupt` saw: whether Ctrl-C came."""

    def __init__(self) -> None:
        self.seen = False


def _cancel_running_statements(wrappers) -> bool:
    """Cancel what each connection is running; True if one was running a statement."""
    busy = False
    for wrapper in wrappers:
        raw = wrapper.connection  # the psycopg2 connection, None until first used
        if raw is None or raw.closed:
            continue
        if raw.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_ACTIVE:
            busy = True
            with contextlib.suppress(psycopg2.Error):  # gone meanwhile: nothing to cancel
                raw.cancel()
    return busy


@contextlib.contextmanager
def cancelling_on_interrupt() -> Iterator[Interruption]:
    """While active (entered in the main thread), a SIGINT cancels the statements the main
    thread's Django connections are running, unless a command has set a SIGINT handler of its
    own. Nothing here reads Django's settings: `manage.py help` works without them."""
    from django.db.backends.signals import connection_created

    interruption = Interruption()
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield interruption  # Ctrl-C ignored (a background job) or handled by someone else
        return
    main_thread = threading.get_ident()
    # Django's connections are per thread, so they are noted as the main thread opens them.
    wrappers = []

    def note(sender, connection, **kwargs) -> None:
        if threading.get_ident() == main_thread and connection not in wrappers:
            wrappers.append(connection)

    def on_sigint(signum, frame) -> None:
        # Runs in the main thread between two bytecodes, which may be inside psycopg2 (it calls
        # Python to read COPY data, and would print a KeyboardInterrupt raised there). While a
        # statement runs, cancelling it is enough: its error ends the command.
        interruption.seen = True
        if not _cancel_running_statements(list(wrappers)):
            raise KeyboardInterrupt

    def watch() -> None:
        # The main thread may be blocked in libpq, where `on_sigint` cannot run until the
        # statement ends: this thread cancels it meanwhile.
        while signals := receiver.recv(64):
            if signal.SIGINT in signals and signal.getsignal(signal.SIGINT) is on_sigint:
                interruption.seen = True
                _cancel_running_statements(list(wrappers))

    connection_created.connect(note, weak=False, dispatch_uid="cancelling_on_interrupt")
    receiver, sender = socket.socketpair()
    sender.setblocking(False)
    previous_fd = signal.set_wakeup_fd(sender.fileno(), warn_on_full_buffer=False)
    signal.signal(signal.SIGINT, on_sigint)
    watcher = threading.Thread(target=watch, name="cancel-on-ctrl-c", daemon=True)
    watcher.start()
    try:
        yield interruption
    finally:
        if signal.getsignal(signal.SIGINT) is on_sigint:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.set_wakeup_fd(previous_fd)
        sender.close()  # the watcher reads the end of the stream and stops
        watcher.join(timeout=1)
        receiver.close()
        connection_created.disconnect(dispatch_uid="cancelling_on_interrupt")
