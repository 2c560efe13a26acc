from django.conf import settings
from django.contrib.auth import get_user_model

from core.management.base import ProjectCommand
from core.management.demo_admin import ensure_demo_admin


class Command(ProjectCommand):
    help = (
        "Create the admin user `admin` with a generated password (kept in .localdb/admin-password) "
        "if it does not exist, and print how to log in."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--username", default="admin", help="the superuser to make (default admin)"
        )

    def handle(self, *args, username: str, **options):
        login = ensure_demo_admin(
            username=username,
            user_model=get_user_model(),
            password_file=settings.DEMO_ADMIN_PASSWORD_FILE,
        )
        state = "created" if login.created else "exists"
        self.stdout.write(f"Admin user ({state}): {login.username} / {login.password}")
