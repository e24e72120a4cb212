"""Aftercare over HTTP on the whole system (SQLite and PostgreSQL, real worker, sandbox bureau):
a follow-up call's answer raises a risk flag and opens the risk manager's post-loan review at
once, with the refreshed bureau report; the reviewer's ``watch`` classifies the loan 关注; the
flags and the review are on the loan's pages for the roles that may see them."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from tests.api.helpers import driver
from tests.conftest import System
from tests.workflows.driving import drive_to


async def _get(system: System, url: str, user: str) -> Any:
    r = await system.call("GET", url, user=user)
    assert r.status_code == 200, r.text
    return r.json()


async def test_an_answer_flags_the_loan_and_the_review_watches_it(system: System) -> None:
    no = await drive_to(system, "SERVICING")
    await system.env.sleep(timedelta(days=8))  # the first call: 7 days after disbursement
    d = driver(system)
    answers = {
        "funds_use": "as_declared",
        "income_change": "lost",
        "repayment_plan": "on_track",
        "notes": "the shop closed in the spring",
    }
    call = await system.in_thread(d.wait_task, "cs", no, "follow_up_call")
    # Reached without the answers: 422 naming the field, nothing recorded.
    r = await system.call(
        "POST", f"/api/v1/tasks/{call}/decision", user="cs", json={"decision": "reached"}
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "data", "funds_use"]
    r = await system.call(
        "POST",
        f"/api/v1/tasks/{call}/decision",
        user="cs",
        json={"decision": "reached", "data": answers},
    )
    assert r.status_code == 200, r.text

    # The review is open for the risk manager at once, showing the flag and the bureau.
    review = await system.in_thread(d.open_task, "risk", no, "post_loan_review")
    context = review["context"]
    assert context["review"] == f"flag/{call}"
    assert [f["kind"] for f in context["open_flags"]] == ["income_lost"]
    assert context["bureau"]["status"] in ("found", "no_record")
    assert context["repayment"]["installments"] >= 1

    flags = await _get(system, f"/api/v1/loans/{no}/risk-flags", "cs")
    assert flags["open"] == 1
    (flag,) = flags["items"]
    assert (flag["kind"], flag["source_task_id"], flag["raised_by"]) == ("income_lost", call, "cs")

    r = await system.call(
        "POST",
        f"/api/v1/tasks/{review['id']}/decision",
        user="risk",
        json={"decision": "watch", "data": {"reason": "income lost: watch closely"}},
    )
    assert r.status_code == 200, r.text

    async def decided() -> Any:
        items = (await _get(system, f"/api/v1/loans/{no}/reviews", "auditor"))["items"]
        return items if items and items[0]["outcome"] else None

    items = None
    for _ in range(200):
        items = await decided()
        if items:
            break
        await asyncio.sleep(0.1)
    assert items is not None, "the review's outcome was not recorded"
    (rec,) = items
    assert (rec["outcome"], rec["decided_by"], rec["outcome_reason"]) == (
        "watch",
        "risk",
        "income lost: watch closely",
    )
    assert rec["effect"].startswith("classified special_mention")
    assert rec["bureau_status"] == context["bureau"]["status"]
    classification = await _get(system, f"/api/v1/loans/{no}/classification", "risk")
    assert classification["current"]["category"] == "special_mention"
    assert classification["current"]["source"] == "manual"
    assert classification["current"]["recorded_by"] == "risk"
    # The flag stays open under watch; customer service may not read the reviews.
    assert (await _get(system, f"/api/v1/loans/{no}/risk-flags", "manager"))["open"] == 1
    denied = await system.call("GET", f"/api/v1/loans/{no}/reviews", user="cs")
    assert denied.status_code == 403
