"""How verify_cdc and lakehouse_verify print a table's reconciliation with the source."""

from collections.abc import Callable

from django.core.management.base import CommandError

from core.verify.engine import TableReport

INDENT = " " * 18


def write_report(
    write: Callable[[str], None], report: TableReport, *, held: str, same: bool, notes=()
) -> None:
    """One line per table (rows held here and live, and the verdict), then its notes, the
    problems found and a few differing rows."""
    verdict = (
        "same"
        if same
        else f"DIFFERS: {len(report.missing):,} missing, {len(report.extra):,} extra, "
        f"{len(report.changed):,} changed"
    )
    write(f"{report.table:<18} {report.in_files:>10,} {held} {report.live:>10,} live  {verdict}")
    for line in [*notes, *report.problems]:
        write(f"{INDENT} {line}")
    for example in report.examples:
        write(f"{INDENT} e.g. {example}")


def fail_if_different(differing: int) -> None:
    if differing:
        raise CommandError(f"{differing} tables differ from the source", returncode=1)
