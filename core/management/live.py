"""How a long-running command (`simulate`, `cdc_tail`) reports as it goes.

On a terminal, the figures are one line redrawn in place and notes are printed above it.
Anywhere else, a run that goes on until it is stopped (`cdc_tail --follow`, `simulate` without
--count or --duration: a service) reports through `logging`, so that a service manager's log
holds it: notes are log records, and the figures are logged every `every` seconds, each with
its time (settings.LOGGING formats the `lakehouse` loggers). A run that ends by itself writes
the same as plain lines among its other output, without times or levels."""

import logging
import time

from django.core.management.base import OutputWrapper


class LiveView:
    def __init__(
        self,
        stream: OutputWrapper,
        logger: logging.Logger,
        *,
        service: bool,
        every: float = 60.0,
    ):
        self.stream = stream
        self.logger = logger
        self.terminal = stream.isatty()
        self.service = service
        self.every = every
        self.logged = time.monotonic()  # the first figures after `every`, not at the start
        self.drawn = 0  # the width of the line on screen

    def figures(self, text: str) -> None:
        """The running figures: redrawn in place, or logged when due."""
        if self.terminal:
            line = text.ljust(self.drawn)  # blanks what is left of a longer line
            self.stream.write("\r" + line, ending="")
            self.stream.flush()
            self.drawn = len(line)
        elif time.monotonic() - self.logged >= self.every:
            if self.service:
                self.logger.info(text)
            else:
                self.stream.write(text)
            self.logged = time.monotonic()

    def note(self, text: str, level: int = logging.WARNING) -> None:
        """Something that happened (an outage, a reconnect): a line of its own."""
        if self.terminal:
            self.clear()
            self.stream.write(text)
        elif self.service:
            self.logger.log(level, text)
        else:
            self.stream.write(text)

    def clear(self) -> None:
        """Leave the terminal as it was before the live line (before the summary is printed)."""
        if self.terminal and self.drawn:
            self.stream.write("\r" + " " * self.drawn + "\r", ending="")
            self.drawn = 0
