"""Product matching through the whole system: the inbox shows the catalog's proposals, a choice
outside its product version is a 422 naming the field that changes nothing, the offer keeps
its product version when the catalog changes, and other terms at the offer go back to matching."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from domain.money import format_rate
from domain.products import choice_data
from models.tables import AuditEvent
from tests.api.helpers import (
    PRODUCT_TERMS,
    assert_422_names,
    drive,
    loan_view,
    mint_demo_tokens,
    new_loan,
    rows,
)
from tests.api.test_errors import _assert_untouched, _audit
from tests.conftest import System


async def _context(system: System, application_no: str, kind: str) -> dict[str, Any]:
    r = await system.call(
        "GET",
        f"/api/v1/tasks?kind={kind}&application_no={application_no}&wait=20",  # once it opens
        user="manager",
    )
    assert r.status_code == 200, r.text
    (task,) = r.json()["items"]
    context: dict[str, Any] = task["context"]
    return context


async def test_a_choice_outside_the_product_is_a_422_naming_the_field(system: System) -> None:
    mint_demo_tokens(system)
    application_no, view = await new_loan(system, "PRODUCT_MATCHING")
    task_id = view["pending_task"]["id"]
    context = await _context(system, application_no, "product_matching")
    codes = [p["product_code"] for p in context["proposals"]]
    assert codes == ["SMB_OPERATING"]  # the demo borrower brought no papers
    excluded = {e["product_code"]: e["reasons"] for e in context["excluded"]}
    assert any("employment_proof" in r for r in excluded["SALARY_CONSUMER"])
    audit = _audit(system, application_no)
    url = f"/api/v1/tasks/{task_id}/decision"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"term_months": 9}, "data.term_months"),
        ({"method": "bullet"}, "data.method"),
        ({"annual_rate": "0.05"}, "data.annual_rate"),
        ({"amount": "5000.00"}, "data.amount"),
        ({"product_code": "SALARY_CONSUMER"}, "data.product_code"),
        ({"upfront_fee": "100.00"}, "data.upfront_fee"),
        ({"product_version": "one"}, "data.product_version"),
    ]
    for change, field in cases:
        r = await system.call(
            "POST",
            url,
            user="product",
            json={"decision": "approve", "data": {**PRODUCT_TERMS, **change}},
        )
        assert_422_names(r, field)
        await _assert_untouched(system, application_no, task_id, "PRODUCT_MATCHING", audit)
    assert (await loan_view(system, application_no))["terms"] is None

    # The proposal as proposed is accepted; the offer names its product version.
    chosen = choice_data(context["proposals"][0])
    r = await system.call("POST", url, user="product", json={"decision": "approve", "data": chosen})
    assert r.status_code == 200, r.text
    terms = (await loan_view(system, application_no))["terms"]
    assert (terms["product_code"], terms["product_version"]) == ("SMB_OPERATING", 1)
    assert (terms["principal"], terms["term_months"], terms["annual_rate"]) == (
        chosen["amount"],
        chosen["term_months"],
        format_rate(Decimal(chosen["annual_rate"])),
    )
    (offered,) = rows(
        system,
        AuditEvent,
        AuditEvent.application_no == application_no,
        AuditEvent.action == "offer.made",
    )
    assert offered.detail["product_code"] == "SMB_OPERATING"
    assert offered.detail["product_version"] == 1


async def test_the_offer_keeps_its_version_and_other_terms_rematch(
    sqlite_system: System,
) -> None:
    system = sqlite_system
    mint_demo_tokens(system)
    application_no, view = await new_loan(system, "OFFER_CONFIRMATION")
    before = view["terms"]
    assert before["product_version"] == 1

    # The product manager publishes a new version in force today: the offer made stays.
    smb = (await system.call("GET", "/api/v1/products/SMB_OPERATING", user="product")).json()[
        "versions"
    ][0]["definition"]
    del smb["code"]
    v2 = {**smb, "rates": {g: {"low": "0.100", "high": "0.115"} for g in "ABCD"}}
    r = await system.call(
        "POST", "/api/v1/products/SMB_OPERATING/versions", user="product", json=v2
    )
    assert r.status_code == 201, r.text
    assert (await loan_view(system, application_no))["terms"] == before

    # The borrower asks for other terms: back to matching, where version 2 is proposed.
    confirm = view["pending_task"]["id"]
    r = await system.call(
        "POST",
        f"/api/v1/tasks/{confirm}/decision",
        user="officer",
        json={"decision": "other_terms", "comment": "借款人希望期限12个月"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["stage"] == "PRODUCT_MATCHING"
    context = await _context(system, application_no, "product_matching")
    assert context["round"] == 2 and context["other_terms"] == "借款人希望期限12个月"
    (smb2,) = context["proposals"]
    assert smb2["product_version"] == 2 and smb2["annual_rate"] == "0.100"
    # A choice of the first round's version is no longer among the proposals.
    task_id = (await loan_view(system, application_no))["pending_task"]["id"]
    stale = await system.call(
        "POST",
        f"/api/v1/tasks/{task_id}/decision",
        user="product",
        json={"decision": "approve", "data": PRODUCT_TERMS},
    )
    assert_422_names(stale, "data.product_code")
    new_terms = {**choice_data(smb2), "term_months": 12}
    await drive(system, application_no, "CONTRACT_SIGNING", new_terms, frm="PRODUCT_MATCHING")
    after = (await loan_view(system, application_no))["terms"]
    assert (after["product_version"], after["term_months"], after["annual_rate"]) == (
        2,
        12,
        "0.100000",
    )
