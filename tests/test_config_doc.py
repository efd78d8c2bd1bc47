"""The README's settings table is generated from the settings class, and kept so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from services import config
from services.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_table_is_the_generated_one() -> None:
    readme = (ROOT / "README.md").read_text()
    assert config.table_in(readme) == config.markdown(), (
        "README.md's settings table is stale: run `make docs`"
    )


def test_every_setting_is_documented_once() -> None:
    table = config.markdown()
    for name, field in config.Settings.model_fields.items():
        assert field.description, f"{name} has no description"
        assert table.count(f"| `CHINWAG_{name.upper()}` |") == 1


def test_write_repairs_a_stale_table(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    stale = (ROOT / "README.md").read_text().replace("| `CHINWAG_MOTD` |", "| `CHINWAG_MOTTO` |")
    readme.write_text(stale)
    assert main(["config", "--write", str(readme)]) == 0
    assert config.table_in(readme.read_text()) == config.markdown()
    assert not config.rewrite(readme)  # already current


def test_the_settings_in_effect_never_show_a_password(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "CHINWAG_DATABASE_URL": "postgresql://chinwag:s3cret@db:5432/chinwag",
        "CHINWAG_PARTITIONS": "8",
    }
    out = subprocess.run(
        [sys.executable, "-m", "services.cli", "config"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "CHINWAG_DATABASE_URL=postgresql://chinwag:***@db:5432/chinwag" in out.splitlines()
    assert "CHINWAG_PARTITIONS=8" in out.splitlines()
    assert "s3cret" not in out
