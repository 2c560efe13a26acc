"""One vocabulary for every command (docs/commands.md): every option says what it does and its
default, a bad value is a usage error (exit status 2) before anything runs, and an old spelling
works for one release with a line saying what replaces it."""

import argparse
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import get_commands, load_command_class

ROOT = Path(__file__).resolve().parent.parent
# Django's own options, on every command.
DJANGO_OPTIONS = {
    "help", "version", "verbosity", "settings", "pythonpath", "traceback", "no_color",
    "force_color", "skip_checks",
}  # fmt: skip
OURS = sorted(name for name, app in get_commands().items() if app == "core")


def options_of(name: str) -> list[argparse.Action]:
    parser = load_command_class("core", name).create_parser("manage.py", name)
    return [action for action in parser._actions if action.dest not in DJANGO_OPTIONS]


@pytest.mark.parametrize("name", OURS)
def test_every_option_says_what_it_does_and_its_default(name):
    for action in options_of(name):
        if action.help == argparse.SUPPRESS:
            continue  # an old spelling, kept for a release
        assert action.help, f"{name} {action.option_strings or action.dest} has no help"
        switch = isinstance(action, argparse._StoreTrueAction)
        if action.option_strings and not switch and action.default is not None:
            assert "default" in action.help, f"{name} {action.option_strings}: no default"


def test_the_same_name_means_the_same_thing_everywhere():
    """--format is an output format (text or json), never a table format."""
    for name in OURS:
        for action in options_of(name):
            if "--format" in action.option_strings and action.help != argparse.SUPPRESS:
                assert {"text", "json"} <= set(action.choices), name


def manage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "SECRET_KEY": "k" * 50, "DJANGO_ENV_FILE": "/nonexistent",
             "DATABASE_URL": "postgres://nobody@127.0.0.1:1/nothing"},
    )  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [
        ["simulate", "--workers", "0"],
        ["cdc_tail", "--batch-seconds", "0"],
        ["seed_all", "--batch-size", "0"],
        ["lakehouse_verify", "--warehouse", "x", "--checkpoint", "y"],
        ["simulate", "--manifest", "x"],
        ["seed_all", "--scale", "huge"],
        ["seed_all", "--now", "2999-01-01"],
        ["lakehouse_apply", "s3://Not_A_Bucket/cdc", "--warehouse", "lake"],
        ["lakehouse_verify", "--warehouse", "lake", "--manifest", "cdc/"],
        ["setup_replication", "--drop"],
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_a_usage_error_exits_2_before_touching_the_database(args):
    done = manage(*args)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr


def test_an_old_spelling_works_and_says_what_replaces_it():
    done = manage("lakehouse_apply", "nowhere", "--warehouse", "w", "--format", "iceberg")
    assert done.stderr.splitlines()[0] == (
        "warning: --format is now --table-format; the old spelling goes in the next release"
    )
    assert "nowhere is not a folder" in done.stderr  # and the command went on


def test_every_error_is_one_line_in_one_style():
    """What a command cannot do is `error: ...`, one line, as argparse and manage.py say theirs
    (never Django's `CommandError: ...`), with exit status 1."""
    done = manage("lakehouse_apply", "nowhere", "--warehouse", "lake")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: nowhere is not a folder: give the --output folder of cdc_tail"
    ]
