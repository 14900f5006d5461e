"""The README documents every setting and every command (docs kept honest by tests)."""
from pathlib import Path

import click

from lms_bridge.cli import main
from lms_bridge.config import SETTINGS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def commands(group, prefix="lms-bridge"):
    for name, cmd in group.commands.items():
        yield f"{prefix} {name}"
        if isinstance(cmd, click.Group):
            yield from commands(cmd, f"{prefix} {name}")


def test_every_setting_is_documented():
    missing = [s.env for s in SETTINGS if s.env and f"`{s.env}`" not in README]
    assert not missing, f"README lacks {missing}"


def test_every_command_is_documented():
    missing = [c for c in commands(main) if f"`{c}" not in README]
    assert not missing, f"README lacks {missing}"


def test_two_commands_in_quick_start():
    assert "make demo" in README and "make test" in README
