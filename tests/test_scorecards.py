"""The assessment rules as data: the scorecard (with the intake checks' thresholds it carries)
seeded as version 1 by ``loanops migrate``; later versions added with an effective date, never
retroactively; the version in force on a day is the one an assessment uses."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from domain.scorecard import SCORECARD_V1
from loanops.cli import app
from loanops.migrate import upgrade
from loanops.scorecards import (
    add_scorecard,
    scorecard_in_force,
    scorecard_version,
    scorecards,
    seed_scorecard,
)
from loanops.settings import get_settings
from models.tables import ScorecardRow


def _rows(engine: Engine) -> list[ScorecardRow]:
    with Session(engine) as s:
        return list(s.exec(select(ScorecardRow).order_by(col(ScorecardRow.version))).all())


def _add(engine: Engine, rules: dict[str, Any], on: date) -> Any:
    return add_scorecard(engine, rules=rules, effective_from=on, source="test", recorded_by="t")


def test_migrating_seeds_card_v1_once(database_url: str, engine: Engine) -> None:
    assert scorecards(engine) == [SCORECARD_V1]
    assert seed_scorecard(engine) == 0
    assert upgrade(database_url) == 0
    [row] = _rows(engine)
    assert row.rules == SCORECARD_V1.rules() and row.recorded_by == "system"


def test_a_new_version_changes_what_it_names_and_is_chosen_by_date(engine: Engine) -> None:
    v2 = _add(engine, {"max_dti": "0.65", "intake": {"min_age": 22}}, date(2027, 1, 1))
    assert (v2.version, v2.max_dti, v2.intake.min_age) == (2, Decimal("0.65"), 22)
    assert v2.intake.max_age == SCORECARD_V1.intake.max_age  # intake merged rule by rule
    assert v2.dti_bands == SCORECARD_V1.dti_bands
    with Session(engine) as s:
        assert scorecard_in_force(s, date(2026, 12, 31)) == SCORECARD_V1
        assert scorecard_in_force(s, date(2027, 1, 1)) == v2
        with pytest.raises(LookupError, match="first version takes effect on 2025-01-01"):
            scorecard_in_force(s, date(2024, 12, 31))
    assert scorecard_version(engine, 2) == v2
    with pytest.raises(LookupError, match="version 3 is not on record"):
        scorecard_version(engine, 3)


@pytest.mark.parametrize(
    ("rules", "on", "message"),
    [
        ({"max_dti": "0.65"}, date(2024, 6, 1), "effective_from: 2024-06-01 is before"),
        ({"max_dti": str(SCORECARD_V1.max_dti)}, date(2027, 1, 1), "rules: the same as version 1"),
        ({"intake": {"min_age": 16}}, date(2027, 1, 1), "intake.min_age: must be at least 18"),
        ({"intake": {"colour": "red"}}, date(2027, 1, 1), "rules.intake.colour: is not"),
        ({"bands": []}, date(2027, 1, 1), "rules.bands: is not a scorecard rule"),
    ],
)
def test_a_bad_version_is_refused_naming_the_rule_and_nothing_is_written(
    engine: Engine, rules: dict[str, Any], on: date, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _add(engine, rules, on)
    assert len(_rows(engine)) == 1


def test_the_cli_lists_shows_and_adds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("LOANOPS_DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        assert runner.invoke(app, ["migrate"]).exit_code == 0
        shown = runner.invoke(app, ["scorecard", "show"])
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.output.split("\n", 1)[1]) == SCORECARD_V1.rules()
        change = tmp_path / "change.json"
        change.write_text(json.dumps({"intake": {"platform_cap": "150000.00"}}))
        added = runner.invoke(
            app,
            [
                *("scorecard", "add", "--file", str(change), "--effective-from", "2027-01-01"),
                *("--source", "risk committee 2026-12", "--by", "manager"),
            ],
        )
        assert added.exit_code == 0, added.output
        assert "scorecard version 2 recorded" in added.output
        listed = runner.invoke(app, ["scorecard", "list"])
        assert "risk committee 2026-12" in listed.output and "2027-01-01" in listed.output
        change.write_text(json.dumps({"intake": {"platform_cap": "-1"}}))
        refused = runner.invoke(
            app,
            [
                *("scorecard", "add", "--file", str(change), "--effective-from", "2027-02-01"),
                *("--source", "x", "--by", "manager"),
            ],
        )
        assert refused.exit_code != 0 and "intake.platform_cap" in refused.output
    finally:
        get_settings.cache_clear()
