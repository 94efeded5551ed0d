"""docs/settings.md is the current rendering of every setting, and every setting says why."""

from __future__ import annotations

from pathlib import Path

from tools import settings_doc

ROOT = Path(__file__).resolve().parents[2]


def test_settings_doc_is_current() -> None:
    """The committed table equals a fresh rendering (regenerate with
    `.venv/bin/python -m tools.settings_doc > docs/settings.md`)."""
    assert (ROOT / "docs" / "settings.md").read_text("utf-8") == settings_doc.render()


def test_every_shared_setting_has_a_reason() -> None:
    """No shared setting is undocumented: each has a comment in shared/settings.py."""
    rows = [
        line
        for line in settings_doc.render().split("## registry")[0].splitlines()
        if line.startswith("| `")
    ]
    assert rows and all(not line.rstrip().endswith("|  |") for line in rows)
