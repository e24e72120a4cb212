"""The inbox's long-poll (issue 13 §6): ``GET /api/v1/tasks?wait=N`` answers an empty page only
after waiting up to N seconds, and as soon as a task appears meanwhile, so a client waiting for
its next task asks once instead of polling; a wait outside 0-30 is a 422 naming ``wait``."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlmodel import Session

from api.app import create_app
from loanops.db import make_engine
from loanops.settings import Settings
from models.tables import Task
from tests.api.test_outages import _loan_row, _token
from tests.conftest import serve_api


def _open_task(url: str, application_no: str) -> str:
    engine = make_engine(url)
    now = datetime.now(UTC)
    task_id = uuid.uuid4()
    with Session(engine) as s:
        s.add(
            Task(
                id=task_id,
                application_no=application_no,
                kind="risk_review",
                candidate_role="risk_manager",
                due_at=now + timedelta(days=1),
                created_at=now,
            )
        )
        s.commit()
    engine.dispose()
    return str(task_id)


async def test_a_waiting_inbox_answers_when_the_task_appears(database_url: str) -> None:
    settings = Settings(environment="test", database_url=database_url)
    application_no = f"A20261129-{uuid.uuid4().hex[:6].upper()}"
    await asyncio.to_thread(_loan_row, database_url, application_no)
    risk = _token(settings, "risk", ("risk_manager",))
    params = {"application_no": application_no, "kind": "risk_review"}
    engine = make_engine(database_url)
    app = create_app(settings, engine=engine)
    async with serve_api(app) as base:

        def get(**extra: str | float) -> httpx.Response:
            return httpx.get(
                f"{base}/api/v1/tasks", params={**params, **extra}, headers=risk, timeout=60
            )

        # Nothing appears: an empty page, once the (short) wait is over.
        r = await asyncio.to_thread(get, wait=0.2)
        assert r.status_code == 200, r.text
        assert r.json()["items"] == []

        # A client waits (up to 30 s); the task appears meanwhile: the waiting call answers it.
        waiting = asyncio.ensure_future(asyncio.to_thread(get, wait=30))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # still waiting: nothing to answer yet
        task_id = await asyncio.to_thread(_open_task, database_url, application_no)
        r = await waiting
        assert r.status_code == 200, r.text
        assert [t["id"] for t in r.json()["items"]] == [task_id]

        # A task already there: answered at once, whatever the wait.
        r = await asyncio.to_thread(get, wait=30)
        assert [t["id"] for t in r.json()["items"]] == [task_id]

        # A wait outside its bounds: 422 naming the field.
        for bad in ("31", "-1", "soon"):
            r = await asyncio.to_thread(get, wait=bad)
            assert r.status_code == 422, r.text
            assert r.json()["detail"][0]["loc"] == ["query", "wait"]
    engine.dispose()
