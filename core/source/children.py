"""The processes this project forks (seeding's generators, simulate's workers): each dies
with the process that forked it, whatever killed that one, and keeps none of the sockets it
inherited.

A forked child shares its parent's open descriptors, the parent's PostgreSQL connection
among them. If a child outlived its parent (killed by SIGKILL, an out-of-memory kill, a
container stop), that socket would stay open in the child, so PostgreSQL would never see the
client go: the parent's transaction would stay open, holding its locks, and every reader of
the tables it had locked would wait for as long as the child lived. So a child asks the
kernel to kill it when its parent dies (PR_SET_PDEATHSIG, Linux), and points every socket
descriptor it inherited at /dev/null: it never uses them, and a kill of the parent then closes
the connection at once. A child opens connections of its own, if it needs any, afterwards."""

import contextlib
import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def become_child_of(parent: int) -> None:
    """The first thing a forked child does; `parent` is the forking process's pid, read
    before the fork."""
    die_with_parent()
    if os.getppid() != parent:  # the parent died before the line above: no signal will come
        os._exit(1)
    let_go_of_inherited_sockets()


def die_with_parent(signal_number: int = signal.SIGKILL) -> None:
    """Have the kernel send this process `signal_number` when its parent dies (Linux; a no-op
    elsewhere). For a process started with subprocess: `preexec_fn=die_with_parent`."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal_number, 0, 0, 0)


def let_go_of_inherited_sockets() -> None:
    """Every socket descriptor of this process, now /dev/null: the descriptor numbers stay
    valid (nothing can write into a socket later opened under the same number), and the
    sockets themselves are released by this process."""
    folder = "/proc/self/fd"
    if not os.path.isdir(folder):
        return
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for name in os.listdir(folder):
            with contextlib.suppress(OSError):  # the listing's own descriptor is gone by now
                if os.readlink(f"{folder}/{name}").startswith("socket:"):
                    os.dup2(null, int(name))
    finally:
        os.close(null)
