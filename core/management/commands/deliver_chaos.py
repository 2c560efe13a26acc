from core.capture.chaos import deliver_round
from core.management.arguments import at_least, place
from core.management.base import ProjectCommand


class Command(ProjectCommand):
    help = (
        "Copy a capture folder the way S3 events deliver it at worst, a round per run: part "
        "of the files waiting, shuffled; some only under a hidden temporary name until the next "
        "round; some delivered again. Run your apply after each round: it must still end equal "
        "to the source. The same --seed gives the same rounds."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "capture",
            type=place,
            help="the capture (cdc_tail's --output: a folder or s3://BUCKET/PREFIX)",
        )
        parser.add_argument(
            "destination", type=place, help="the folder, or s3://BUCKET/PREFIX, to deliver into"
        )
        parser.add_argument(
            "--seed", type=int, default=1, help="the rounds are a function of it (default 1)"
        )
        parser.add_argument(
            "--rounds", type=at_least(1), default=1, help="rounds to deliver now (default 1)"
        )

    def handle(self, *args, capture, destination, seed, rounds, **options):
        for _ in range(rounds):
            done = deliver_round(capture, destination, seed)
            self.stdout.write(
                f"round {done.number}: {files(done.delivered)} delivered, {done.again} again, "
                f"{done.unfinished} still uploading, {done.waiting} delayed"
                + ("; everything delivered" if done.done else "")
            )
            if done.done:
                break


def files(count: int) -> str:
    return f"{count} file" if count == 1 else f"{count} files"
