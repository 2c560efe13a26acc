"""How a table's reconciliation with the source is told (verify_cdc, lakehouse_verify): a line
per table, then its notes, the problems found and a few differing rows; and the failure that
ends a run whose tables differ."""

from core.errors import Differences
from core.verify.engine import TableReport

INDENT = " " * 18


def report_lines(report: TableReport, *, held: str, same: bool, notes=()) -> list[str]:
    """One line per table (rows held here and live, and the verdict), then its notes, the
    problems found and a few differing rows."""
    verdict = (
        "same"
        if same
        else f"DIFFERS: {len(report.missing):,} missing, {len(report.extra):,} extra, "
        f"{len(report.changed):,} changed"
    )
    lines = [f"{report.table:<18} {report.in_files:>10,} {held} {report.live:>10,} live  {verdict}"]
    lines += [f"{INDENT} {line}" for line in [*notes, *report.problems]]
    lines += [f"{INDENT} e.g. {example}" for example in report.examples]
    return lines


def differences_failure(differing: int = 0, *, message: str | None = None) -> Differences:
    return Differences(message or f"{differing} tables differ from the source")
