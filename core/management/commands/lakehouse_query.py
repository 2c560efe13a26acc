from datetime import datetime
from decimal import Decimal

from django.db import connection

from core.errors import Differences
from core.lake.query import ask_lake, run_queries
from core.management.arguments import place
from core.management.base import ProjectCommand

WIDTH = 46


def shown(value) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, Decimal | float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def line(row: tuple | None) -> str:
    text = "  ".join(shown(value) for value in row) if row is not None else ""
    return text if len(text) <= WIDTH else text[: WIDTH - 1] + "…"


class Command(ProjectCommand):
    help = (
        "Run the README's four sample queries with DuckDB over the lakehouse tables and with "
        "PostgreSQL over the source, and print each answer beside the other, with a verdict. "
        "Exit status 1 if any answer differs. With --sql, run your own query over the "
        "lakehouse alone: each table named as the source's, as it stands now (the newest "
        "version of each key, deleted keys left out)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--warehouse",
            type=place,
            required=True,
            help="lakehouse_apply's --warehouse (a folder, or s3://BUCKET/PREFIX)",
        )
        parser.add_argument(
            "--sql",
            help='a query of your own (DuckDB SQL), e.g. "SELECT status, count(*) FROM '
            'core_order GROUP BY 1"; its rows are printed tab-separated, with a header',
        )

    def handle(self, *args, warehouse, sql, **options):
        if sql is not None:
            return self.ask(warehouse, sql)
        answers = run_queries(connection.get_connection_params(), warehouse)
        for answer in answers:
            verdict = "same answer" if answer.same else "DIFFERENT ANSWERS"
            self.stdout.write(f"\n{answer.title}: {verdict}")
            self.stdout.write(f"  {'lakehouse (DuckDB)':<{WIDTH}} | PostgreSQL")
            for index in range(max(len(answer.lake), len(answer.source))):
                ours = answer.lake[index] if index < len(answer.lake) else None
                theirs = answer.source[index] if index < len(answer.source) else None
                self.stdout.write(f"  {line(ours):<{WIDTH}} | {line(theirs)}")
        different = [answer.title for answer in answers if not answer.same]
        if different:
            raise Differences(f"different answers: {', '.join(different)}")
        self.stdout.write(f"\nall {len(answers)} queries give the same answer on both sides")

    def ask(self, warehouse, sql: str) -> None:
        columns, rows = ask_lake(warehouse, sql)
        self.stdout.write("\t".join(columns))
        for row in rows:
            self.stdout.write("\t".join("" if value is None else str(value) for value in row))
