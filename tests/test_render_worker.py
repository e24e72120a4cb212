"""The render worker (issue 13) serves exactly the rendering activities, by their registered
names: a renamed activity would otherwise wait on the render queue with no worker for it."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from loanops.settings import Settings
from worker import QUEUES, RENDER_ACTIVITIES, activity_name, build_activities, run_worker


def test_every_render_activity_is_one_the_worker_builds(engine: Engine) -> None:
    settings = Settings(environment="test", temporal_address="127.0.0.1:9")
    names = {activity_name(fn) for fn in build_activities(engine, settings)}
    assert names >= RENDER_ACTIVITIES
    assert {
        "prepare_contract",
        "record_signature",
        "render_risk_report",
        "issue_settlement_certificate",
    } == RENDER_ACTIVITIES


async def test_an_unknown_queue_is_refused_before_connecting() -> None:
    assert QUEUES == ("all", "loans", "render")
    with pytest.raises(ValueError, match="queue must be one of all, loans, render"):
        await run_worker(Settings(environment="test", temporal_address="127.0.0.1:9"), "both")
