"""The loader: COPY text format, and generation shared between processes."""

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import NamedTuple
from uuid import UUID

import pytest

from core.seeding.loading import CopyWriter, GenerationFailed, RowSink, copy_text, load_in_parallel


class Row(NamedTuple):
    id: UUID
    at: datetime
    name: str
    amount: Decimal
    count: int
    day: date | None
    flag: bool
    extra: dict | None


def test_copy_text_escapes_text_writes_null_and_keeps_column_order():
    rows = [
        Row(UUID(int=1), datetime(2026, 3, 29, 1, 30, tzinfo=UTC), "tab\there", Decimal("9.90"),
            3, None, True, {"a": "b\\c"}),
        Row(UUID(int=255), datetime(2026, 3, 29, 1, 30, 0, 5, tzinfo=UTC), "line\nback\\", Decimal("0"),
            -1, date(2026, 1, 2), False, None),
    ]  # fmt: skip
    assert copy_text(rows) == (
        f"{1:032x}\t2026-03-29T01:30:00+00:00\ttab\\there\t9.90\t3\t\\N\tt\t"
        '{"a":"b\\\\\\\\c"}\n'
        f"{255:032x}\t2026-03-29T01:30:00.000005+00:00\tline\\nback\\\\\t0\t-1\t2026-01-02\tf\t\\N\n"
    )
    assert copy_text([]) == ""


class Recorder(CopyWriter):
    """A writer that records what it would COPY, in the order it would."""

    def __init__(self):
        super().__init__(raw_connection=None)
        self.written: list[tuple[str, int, str]] = []

    def write_formatted(self, table: str, count: int, text: str) -> None:
        self.written.append((table, count, text))


def units_of_work(sink: RowSink) -> None:
    """Eleven units of uneven size, some writing nothing, some several batches."""
    for unit in range(11):
        if not sink.claim():
            continue
        for batch in range(unit % 4):
            sink.write("core_tenant", [Row(UUID(int=unit * 10 + batch), datetime(2026, 1, 1,
                       tzinfo=UTC), f"unit {unit}", Decimal(unit), batch, None, True, None)])  # fmt: skip


@pytest.mark.parametrize("generators", [2, 3, 5, 12])
def test_rows_reach_the_tables_in_the_same_order_whatever_the_number_of_generators(generators):
    alone = Recorder()
    load_in_parallel(alone, units_of_work, generators=1)
    assert [count for _, count, _ in alone.written] == [1] * 15
    shared = Recorder()
    load_in_parallel(shared, units_of_work, generators=generators)
    assert shared.written == alone.written


def test_a_failure_in_any_generating_process_is_raised_in_the_loader():
    def fails_in_unit_seven(sink: RowSink) -> None:
        for unit in range(11):
            if sink.claim() and unit == 7:
                raise ValueError("unit 7 broke")

    with pytest.raises(GenerationFailed, match="ValueError: unit 7 broke"):
        load_in_parallel(Recorder(), fails_in_unit_seven, generators=3)
