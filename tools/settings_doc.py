"""Render every setting of every service as a Markdown table: environment variable,
default, and the reason written next to it in the code.

`python -m tools.settings_doc > docs/settings.md`; a test keeps the committed copy current,
so the documentation of a setting is the comment above it in `settings.py`.
"""

from __future__ import annotations

import ast
import inspect
import sys
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings


def _classes() -> list[tuple[str, type[BaseSettings]]]:
    from allowance.settings import AllowanceSettings
    from matcher.settings import MatcherSettings
    from registry.settings import RegistrySettings

    from shared.settings import ServiceSettings
    from shared.topics import TopicSettings

    return [
        ("every service (shared/settings.py)", ServiceSettings),
        ("registry", RegistrySettings),
        ("matcher", MatcherSettings),
        ("allowance", AllowanceSettings),
        (
            "provisioning (shared/topics.py): `python -m shared.provision`, the local"
            " launcher, deploy/k8s `gwangsan-config`",
            TopicSettings,
        ),
    ]


def _comments(cls: type) -> dict[str, str]:
    """The comment block directly above each field assignment in the class body."""
    source_lines, _ = inspect.getsourcelines(cls)
    tree = ast.parse(inspect.getsource(cls))
    class_def = tree.body[0]
    assert isinstance(class_def, ast.ClassDef)
    found: dict[str, str] = {}
    last_comment = ""
    for node in class_def.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            lines: list[str] = []
            index = node.lineno - 2
            while index >= 0 and source_lines[index].strip().startswith("#"):
                text = source_lines[index].strip().lstrip("#").strip()
                if text.startswith("---"):
                    break
                lines.insert(0, text)
                index -= 1
            comment = " ".join(lines)
            # A comment above a group of fields documents all of them.
            if comment:
                last_comment = comment
            elif source_lines[node.lineno - 2].strip() != "":
                comment = last_comment
            found[node.target.id] = comment
    return found


def _default(field: Any) -> str:
    value = field.get_default(call_default_factory=True)
    if isinstance(value, SecretStr):
        return "(secret, no default)" if not value.get_secret_value() else "(secret)"
    text = str(value)
    if len(text) > 60:
        text = text[:57] + "…"
    return f"`{text}`" if text != "" else "(empty)"


def render() -> str:
    out = [
        "# Settings",
        "",
        "Every setting is an environment variable (the upper-case name). Generated from the",
        "code by `python -m tools.settings_doc > docs/settings.md`; the reason is the comment",
        "next to the setting in its `settings.py`.",
        "",
    ]
    shared_fields: set[str] = set()
    for title, cls in _classes():
        comments: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            if issubclass(klass, BaseSettings) and klass is not BaseSettings:
                comments.update(_comments(klass))
        own = [
            (name, field)
            for name, field in cls.model_fields.items()
            if not shared_fields or name not in shared_fields or name in _comments(cls)
        ]
        out += [f"## {title}", "", "| variable | default | why |", "|---|---|---|"]
        for name, field in own:
            why = (comments.get(name) or field.description or "").replace("|", "\\|")
            out.append(f"| `{name.upper()}` | {_default(field)} | {why} |")
        out.append("")
        if not shared_fields:
            shared_fields = set(cls.model_fields)
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(render())
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(render(), "utf-8")
