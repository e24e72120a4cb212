"""``loanops product list/show`` against a temporary SQLite database migrated by ``migrate``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from domain.products import SEED_CATALOG
from loanops.cli import app
from loanops.settings import get_settings


def test_product_list_and_show(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOANOPS_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("COLUMNS", "250")
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        assert runner.invoke(app, ["migrate"]).exit_code == 0
        listed = runner.invoke(app, ["product", "list"])
        assert listed.exit_code == 0, listed.output
        for d in SEED_CATALOG:
            assert d.code in listed.stdout
        assert "A:0.072-0.114" in listed.stdout
        shown = runner.invoke(app, ["product", "show", "SHORT_BULLET"])
        assert shown.exit_code == 0, shown.output
        bullet = next(d for d in SEED_CATALOG if d.code == "SHORT_BULLET")
        assert json.loads(shown.stdout) == bullet.to_json()
        missing = runner.invoke(app, ["product", "show", "NOPE"])
        assert missing.exit_code != 0 and "NOPE does not exist" in missing.stderr
        no_version = runner.invoke(app, ["product", "show", "SHORT_BULLET", "--version", "9"])
        assert no_version.exit_code != 0 and "no version 9" in no_version.stderr
    finally:
        get_settings.cache_clear()
