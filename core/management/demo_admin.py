"""The local demo's admin login: created once, its password kept beside the local server's state."""

import secrets
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AdminLogin:
    username: str
    password: str
    created: bool


def ensure_demo_admin(*, username: str, user_model, password_file: Path) -> AdminLogin:
    """Create `username` as a superuser if missing; reuse the saved password otherwise.

    If the user exists but its saved password is gone (or does not match), a new one is set, so
    the printed login always works.
    """
    saved = password_file.read_text().strip() if password_file.exists() else ""
    user = user_model.objects.filter(username=username).first()
    if user is not None and saved and user.check_password(saved):
        return AdminLogin(username=username, password=saved, created=False)
    password = secrets.token_urlsafe(12)
    if user is None:
        user_model.objects.create_superuser(username=username, email="", password=password)
    else:
        user.set_password(password)
        user.save(update_fields=["password"])
    password_file.parent.mkdir(parents=True, exist_ok=True)
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    return AdminLogin(username=username, password=password, created=user is None)
