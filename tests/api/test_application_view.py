"""The reviewers' page of an application: its data, the borrower as submitted (masked by role),
the documents, and the automatic assessment — checks, the sandbox bureau's answer and the score
— which the intake and risk tasks link to; and the issue's example knocked out."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

from pypdf import PdfReader

from domain.masking import mask_id_number
from loanops.blacklist import add_to_blacklist
from loanops.demo import DEMO_BORROWER
from loanops.scorecards import add_scorecard
from tests.api.helpers import application_body, driver, mint_demo_tokens, submit
from tests.conftest import System
from tests.workflows.test_timers import eventually, open_task


async def _assessed(system: System, application_no: str) -> dict[str, Any]:
    task = await eventually(
        lambda: open_task(system, application_no, "intake_review"), "intake task"
    )
    assert task is not None
    r = await system.call("GET", f"/api/v1/applications/{application_no}", user="ops")
    assert r.status_code == 200, r.text
    page: dict[str, Any] = r.json()
    return page


async def test_the_reviewers_see_the_data_checks_bureau_and_score(system: System) -> None:
    mint_demo_tokens(system)
    app_no = await submit(system)
    page = await _assessed(system, app_no)
    assert page["purpose"] == "店铺装修" and page["repayment_source"] == "经营收入"
    assert page["applicant"]["monthly_income"] == "18000.00"
    assessment = page["assessment"]
    assert assessment["round"] == 1
    assert assessment["bureau_status"] == "found"  # the demo identity is in the sandbox's file
    assert [c["code"] for c in assessment["checks"]] == [
        "age",
        "documents",
        "purpose",
        "duplicate_application",
        "blacklist",
        "borrowing_caps",
        "income",
    ]
    assert assessment["grade"] in {"A", "B", "C", "D", "E"}
    assert assessment["scorecard_version"] == 1
    assert {a["attribute"] for a in assessment["breakdown"]} >= {"dti", "age", "purpose_category"}
    # The years of employment the application states reach the score.
    assert page["applicant"]["employment_years"] == DEMO_BORROWER["employment_years"] == 6
    employment = next(a for a in assessment["breakdown"] if a["attribute"] == "employment_years")
    assert (employment["value"], employment["reason"]) == (6, "EMPLOYMENT_5Y_PLUS")
    assert assessment["knock_outs"] == [] and assessment["recommendation"] == "approve"

    # The task links to the page and carries the summary.
    tasks = (await system.call("GET", "/api/v1/tasks?kind=intake_review", user="ops")).json()
    mine = next(t for t in tasks["items"] if t["application_no"] == app_no)
    assert mine["application_url"] == f"/api/v1/applications/{app_no}"
    assert mine["context"]["grade"] == assessment["grade"]

    # Customer service sees the borrower masked.
    cs = (await system.call("GET", f"/api/v1/applications/{app_no}", user="cs")).json()
    assert cs["applicant"]["name"] != page["applicant"]["name"]
    assert page["applicant"]["id_number"][-4:] == cs["applicant"]["id_number"][-4:]
    assert cs["applicant"]["id_number"] != page["applicant"]["id_number"]


async def test_the_issue_example_shows_its_knock_outs(system: System) -> None:
    """¥5,000,000 from a borrower earning ¥1,000 a month, to trade stocks."""
    mint_demo_tokens(system)
    body = application_body(amount="5000000.00", purpose="炒股")
    body["borrower"]["monthly_income"] = "1000.00"
    app_no = await submit(
        system, **{k: v for k, v in body.items() if k != "borrower"}, borrower=body["borrower"]
    )
    assessment = (await _assessed(system, app_no))["assessment"]
    failed = {c["code"] for c in assessment["checks"] if c["outcome"] == "fail"}
    assert {"purpose", "borrowing_caps", "documents"} <= failed
    assert {"purpose", "borrowing_caps"} <= set(assessment["knock_outs"])
    assert assessment["recommendation"] == "decline"
    # One rule set: the score lists the intake checks' knock-outs (not judged again) and adds
    # its own (no income to carry the debt).
    assert assessment["top_reasons"][:3] == [
        "KO_PROHIBITED_PURPOSE",
        "KO_CAPS_EXCEEDED",
        "KO_DTI_OVER_LIMIT",
    ]


async def test_the_rules_in_force_are_used_and_recorded(sqlite_system: System) -> None:
    """A scorecard version in force today (here: lending from 40) decides the checks and the
    score, and the assessment records its number."""
    system = sqlite_system
    mint_demo_tokens(system)
    await system.in_thread(
        add_scorecard,
        system.engine,
        rules={"intake": {"min_age": 40}},
        effective_from=date(2025, 6, 1),
        source="test: lending from 40",
        recorded_by="manager",
    )
    app_no = await submit(system)  # the demo borrower is 38
    assessment = (await _assessed(system, app_no))["assessment"]
    assert assessment["scorecard_version"] == 2
    age = next(c for c in assessment["checks"] if c["code"] == "age")
    assert age["outcome"] == "fail" and "40–60" in age["detail"]
    assert assessment["top_reasons"][0] == "KO_AGE_OUT_OF_BOUNDS"


async def test_the_risk_manager_gets_the_risk_report(system: System) -> None:
    """Rendered by the worker when the application reaches risk review; HTML and PDF, with the
    identifiers masked; its text read back from the PDF."""
    mint_demo_tokens(system)
    app_no = await submit(system)
    missing = await system.call(
        "GET", f"/api/v1/applications/{app_no}/risk-report.pdf", user="risk"
    )
    assert missing.status_code == 404
    d = driver(system)
    await system.in_thread(d.decide, "ops", app_no, "intake_review", "approve")
    task = await eventually(lambda: open_task(system, app_no, "risk_review"), "risk task")
    assert task is not None
    assert task.context is not None
    assert task.context["risk_report"] == f"/api/v1/applications/{app_no}/risk-report.pdf"
    pdf = await system.call("GET", task.context["risk_report"], user="risk")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert app_no in text and "风险评估报告" in text
    assert DEMO_BORROWER["id_number"] not in text
    assert mask_id_number(DEMO_BORROWER["id_number"]) in text
    html = await system.call("GET", f"/api/v1/applications/{app_no}/risk-report", user="risk")
    assert html.status_code == 200 and "风险评估报告" in html.text


async def test_the_issue_example_cannot_reach_an_offer_without_the_manager(
    system: System,
) -> None:
    mint_demo_tokens(system)
    body = application_body(amount="5000000.00", purpose="炒股")
    body["borrower"]["monthly_income"] = "1000.00"
    app_no = await submit(
        system, **{k: v for k, v in body.items() if k != "borrower"}, borrower=body["borrower"]
    )
    d = driver(system)
    await system.in_thread(d.decide, "ops", app_no, "intake_review", "approve")
    risk = await eventually(lambda: open_task(system, app_no, "risk_review"), "risk task")
    assert risk is not None and risk.context is not None
    assert {"purpose", "borrowing_caps"} <= set(risk.context["knock_outs"])
    stage = await system.in_thread(d.decide, "risk", app_no, "risk_review", "approve")
    assert stage == "RISK_REVIEW"  # the risk manager's approval is not enough
    second = await eventually(lambda: open_task(system, app_no, "risk_approval"), "manager task")
    assert second is not None and second.candidate_role == "department_manager"
    assert second.context is not None
    assert second.context["beyond_authority"][0].startswith("amount 5000000.00 above")


async def test_a_blacklisted_borrower_is_knocked_out(system: System) -> None:
    mint_demo_tokens(system)
    await system.in_thread(
        add_to_blacklist,
        system.engine,
        id_number=DEMO_BORROWER["id_number"],
        reason="forged papers",
        by="manager",
    )
    app_no = await submit(system)
    assessment = (await _assessed(system, app_no))["assessment"]
    check = next(c for c in assessment["checks"] if c["code"] == "blacklist")
    assert check["outcome"] == "fail" and check["knock_out"]
    assert "blacklist" in assessment["knock_outs"]
    assert assessment["recommendation"] == "decline"
