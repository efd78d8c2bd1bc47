"""``chinwag config``: the settings in effect, or the reference table of every setting.

The README's configuration table is this module's output (``make docs``
rewrites it between its markers; a test fails when they disagree), so the
documentation cannot drift from the settings classes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from libs.logs import scrub
from libs.settings import Settings

BEGIN = "<!-- settings: generated from libs/settings.py by `make docs`; do not edit by hand -->"
END = "<!-- end of settings -->"


def markdown(settings: type[BaseSettings] = Settings) -> str:
    """One row per setting: its variable, default and meaning."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in settings.model_fields.items():
        meaning = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{prefix}{name.upper()}` | {_default(field)} | {meaning} |")
    return "\n".join(rows)


def _default(field: FieldInfo) -> str:
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return "(secret)"
    return f"`{value}`"


def effective(settings: Settings) -> str:
    """``CHINWAG_NAME=value`` lines for the settings in effect, passwords masked."""
    lines = []
    for name in type(settings).model_fields:
        value: Any = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = scrub(value.get_secret_value())
        lines.append(f"CHINWAG_{name.upper()}={'' if value is None else value}")
    return "\n".join(lines)


def rewrite(readme: Path) -> bool:
    """Replace the table between the markers in ``readme``; whether it changed."""
    text = readme.read_text()
    updated = replace_table(text)
    if updated != text:
        readme.write_text(updated)
    return updated != text


def replace_table(text: str) -> str:
    """``text`` with the generated table between its markers."""
    start, end = _between(text)
    return text[:start] + "\n" + markdown() + "\n" + text[end:]


def table_in(text: str) -> str:
    """The table currently between the markers."""
    start, end = _between(text)
    return text[start:end].strip()


def _between(text: str) -> tuple[int, int]:
    """Where the table goes: from the end of the first marker to the second marker."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the markers {BEGIN!r} … {END!r} are missing")
    return start + len(BEGIN), end
