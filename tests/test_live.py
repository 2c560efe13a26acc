"""The long-running commands' reporting: a live line on a terminal; elsewhere, log records for a
service, plain lines for a run that ends by itself."""

import io
import logging

from django.core.management.base import OutputWrapper

from core.management.live import LiveView


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_figures_are_redrawn_in_place_and_notes_go_above(caplog):
    screen = Terminal()
    view = LiveView(OutputWrapper(screen), logging.getLogger("lakehouse.test"), service=True)
    view.figures("10 changes")
    view.figures("9 changes")  # shorter: the rest of the old line is blanked
    view.note("lost the connection; reconnecting")
    view.figures("12 changes")
    view.clear()
    assert screen.getvalue() == (
        "\r10 changes" "\r9 changes "
        "\r          \r" "lost the connection; reconnecting\n"
        "\r12 changes" "\r          \r"
    )  # fmt: skip
    assert caplog.records == []


def test_a_service_elsewhere_logs_its_notes_and_its_figures_when_due(caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="lakehouse.test")
    now = [0.0]
    monkeypatch.setattr("core.management.live.time.monotonic", lambda: now[0])
    piped = io.StringIO()
    view = LiveView(
        OutputWrapper(piped), logging.getLogger("lakehouse.test"), service=True, every=60
    )
    for second, text in ((30, "at 30 s"), (61, "at 61 s"), (62, "at 62 s")):  # 62: too soon
        now[0] = second
        view.figures(text)
    view.note("lost the connection; reconnecting")
    now[0] = 200
    view.figures("at 200 s")
    assert piped.getvalue() == ""
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "at 61 s"),
        ("WARNING", "lost the connection; reconnecting"),
        ("INFO", "at 200 s"),
    ]


def test_a_run_that_ends_by_itself_writes_plain_lines_elsewhere(caplog, monkeypatch):
    """Off a terminal, a drain or a counted run's notes are lines of its output, without the
    time and level a service's log needs."""
    caplog.set_level(logging.INFO, logger="lakehouse.test")
    now = [0.0]
    monkeypatch.setattr("core.management.live.time.monotonic", lambda: now[0])
    piped = io.StringIO()
    view = LiveView(
        OutputWrapper(piped), logging.getLogger("lakehouse.test"), service=False, every=60
    )
    view.note("made slot demo")
    now[0] = 61
    view.figures("at 61 s")
    assert piped.getvalue() == "made slot demo\nat 61 s\n"
    assert caplog.records == []
