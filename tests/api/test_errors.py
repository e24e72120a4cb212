"""Every error the API promises, against the real worker and app: the status, the reason, and that
nothing changed (no row written, the task still open, the stage where it was)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy_financial as npf
import pytest
from sqlmodel import Session

from domain.audit_actions import FOUR_EYES_REFUSED
from domain.calendar import business_date
from domain.lifecycle import Role
from domain.lpr import default_lpr_table
from loanops.demo import DEMO_BORROWER
from loanops.security import create_access_token, hash_password
from models.tables import (
    Application,
    AuditEvent,
    Borrower,
    Disbursement,
    Payment,
    Task,
    User,
)
from tests.api.helpers import (
    OMIT,
    PRODUCT_TERMS,
    application_body,
    assert_422_names,
    count,
    drive,
    driver,
    equal_installment_rows,
    error_fields,
    loan_view,
    mint_demo_tokens,
    new_loan,
    rows,
    submit,
    task_row,
)
from tests.conftest import DEMO_PASSWORD, System


@pytest.fixture(autouse=True)
def _demo_logins(system: System) -> None:
    mint_demo_tokens(system)


# ---- authentication and roles --------------------------------------------------------------


async def test_requests_without_a_valid_token_or_password_get_401(system: System) -> None:
    r = await system.call("POST", "/api/v1/applications", json=application_body())
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "Bearer"

    for token in (
        "not-a-jwt",
        create_access_token(
            subject="manager", roles=["department_manager"], secret="x" * 40, minutes=5
        ),
        create_access_token(
            subject="manager",
            roles=["department_manager"],
            secret=system.settings.secret_key,
            minutes=5,
            now=datetime.now(UTC) - timedelta(hours=1),
        ),
        create_access_token(
            subject="nobody",
            roles=["department_manager"],
            secret=system.settings.secret_key,
            minutes=5,
        ),
    ):
        bearer = {"Authorization": f"Bearer {token}"}
        r = await system.in_thread(
            system.http.post, "/api/v1/applications", headers=bearer, json=application_body()
        )
        assert r.status_code == 401, (token, r.text)
        assert r.json()["detail"] == "invalid or expired token"
        r = await system.in_thread(system.http.get, "/api/v1/auth/me", headers=bearer)
        assert r.status_code == 401

    # Wrong password and unknown user get the same answer, and no token.
    for username, password in (("officer", "wrong-password"), ("ghost", DEMO_PASSWORD)):
        r = await system.call(
            "POST", "/api/v1/auth/token", data={"username": username, "password": password}
        )
        assert r.status_code == 401
        assert r.json() == {"detail": "incorrect username or password"}

    # The right password does work (so the 401s above are about the credentials).
    r = await system.call(
        "POST", "/api/v1/auth/token", data={"username": "officer", "password": DEMO_PASSWORD}
    )
    assert r.status_code == 200 and r.json()["access_token"]

    assert count(system, Application) == 0
    assert count(system, Borrower) == 0
    assert count(system, Task) == 0


async def test_only_a_business_officer_submits_an_application(system: System) -> None:
    for user in ("ops", "risk", "cs", "auditor"):
        r = await system.call("POST", "/api/v1/applications", user=user, json=application_body())
        assert r.status_code == 403, (user, r.text)
        assert "business_officer" in r.json()["detail"]
    assert count(system, Application) == 0
    assert count(system, Borrower) == 0
    assert count(system, Task) == 0


INVALID_APPLICATIONS: list[tuple[str, dict[str, Any]]] = [
    ("borrower.id_number", {"borrower": {**DEMO_BORROWER, "id_number": "11010519491231"}}),
    ("borrower.id_number", {"borrower": {**DEMO_BORROWER, "id_number": "11010519491231002Y"}}),
    ("borrower.phone", {"borrower": {**DEMO_BORROWER, "phone": "12800138000"}}),
    ("borrower.phone", {"borrower": {**DEMO_BORROWER, "phone": "1380013800"}}),
    ("amount", {"amount": "-100.00"}),
    ("amount", {"amount": "0"}),
    ("amount", {"amount": "100.001"}),
    ("term_months", {"term_months": 0}),
    ("term_months", {"term_months": 361}),
    ("purpose", {"purpose": OMIT}),
    ("surprise", {"surprise": "extra"}),
]


def _borrower(**change: str) -> dict[str, Any]:
    return {"borrower": {**DEMO_BORROWER, **change}}


# Authenticity checks (domain.identity): the field, and the reason its message gives.
UNAUTHENTIC_APPLICATIONS: list[tuple[str, dict[str, Any], str]] = [
    ("borrower.id_number", _borrower(id_number="11010519491231002"), "must be 18 characters"),
    ("borrower.id_number", _borrower(id_number="11O10519491231002X"), "17 digits followed"),
    ("borrower.id_number", _borrower(id_number="110105194912310020"), "check digit"),
    ("borrower.id_number", _borrower(id_number="310115202302294568"), "2023-02-29 is not a real"),
    ("borrower.id_number", _borrower(id_number="110105209901010012"), "in the future"),
    ("borrower.phone", _borrower(phone="+1 415 555 0100"), "mainland (+86)"),
    ("borrower.phone", _borrower(phone="1380013800O"), "only digits"),
    ("borrower.phone", _borrower(phone="138001380001"), "11 digits"),
    ("borrower.bank_card", _borrower(bank_card="6222020200112233445"), "Luhn"),
    ("borrower.bank_card", _borrower(bank_card="622588012345678"), "16 to 19 digits"),
    ("borrower.bank_card", _borrower(bank_card="62220202001122334461"), "16 to 19 digits"),
    ("borrower.bank_card", _borrower(bank_card="6225a80123456783"), "only digits"),
    ("borrower.monthly_income", _borrower(monthly_income="-1.00"), "greater than or equal to 0"),
    ("borrower.monthly_income", _borrower(monthly_income="18000.001"), "2 decimal places"),
    ("amount", {"amount": "10000000.01"}, "less than or equal to 10000000.00"),
    ("amount", {"amount": "NaN"}, "finite"),
]


async def test_invalid_applications_are_refused_naming_the_field(system: System) -> None:
    for field, change in INVALID_APPLICATIONS:
        r = await system.call(
            "POST", "/api/v1/applications", user="officer", json=application_body(**change)
        )
        assert_422_names(r, field)
    for field, change, reason in UNAUTHENTIC_APPLICATIONS:
        r = await system.call(
            "POST", "/api/v1/applications", user="officer", json=application_body(**change)
        )
        assert_422_names(r, field)
        assert reason in r.json()["detail"][0]["msg"], (change, r.text)
    assert count(system, Application) == 0
    assert count(system, Borrower) == 0
    assert count(system, Task) == 0

    # The same body without the fault is accepted (the cases above fail for their field only).
    await submit(system)
    assert count(system, Application) == 1


async def test_identity_values_are_stored_normalized(system: System) -> None:
    """A lower-case x, a +86 prefix with spaces and hyphens, a card written in groups, and the
    largest amount: accepted, and stored as the checks normalize them."""
    x_id = "11010519491231002X"  # check character X
    written = {
        "id_number": x_id.lower(),
        "phone": "+86 138-0013-8000",
        "bank_card": "6222 0202 0011 2233 446",
    }
    await submit(system, **_borrower(**written), amount="10000000.00", term_months=360)
    (borrower,) = rows(system, Borrower)
    assert (borrower.id_number, borrower.phone, borrower.bank_card) == (
        x_id,
        DEMO_BORROWER["phone"],
        DEMO_BORROWER["bank_card"],
    )
    (application,) = rows(system, Application)
    assert (application.amount, application.term_months) == (Decimal("10000000.00"), 360)


# ---- task decisions ------------------------------------------------------------------------


def _audit(system: System, application_no: str) -> list[str]:
    """The loan's trail, without the records of refused four-eyes attempts (which the API
    writes for the inspection report; checked in the maker-checker test)."""
    events = rows(system, AuditEvent, AuditEvent.application_no == application_no)
    return sorted(e.event_key for e in events if e.action != FOUR_EYES_REFUSED)


async def _assert_untouched(
    system: System, application_no: str, task_id: str, stage: str, audit: list[str]
) -> None:
    """The refused call left no trace: task open and undecided, same stage, no new audit entry."""
    assert _audit(system, application_no) == audit
    task = task_row(system, task_id)
    assert task.status == "open" and task.decision is None and task.decided_by is None
    view = await loan_view(system, application_no)
    assert view["stage"] == stage
    assert view["pending_task"]["id"] == task_id


async def test_intake_review_decision_errors(system: System) -> None:
    application_no, view = await new_loan(system)
    task_id = view["pending_task"]["id"]
    audit = _audit(system, application_no)
    url = f"/api/v1/tasks/{task_id}/decision"

    r = await system.call("POST", url, user="risk", json={"decision": "approve"})
    assert r.status_code == 403
    assert "operations_specialist" in r.json()["detail"]
    [attempt] = rows(system, AuditEvent, AuditEvent.action == FOUR_EYES_REFUSED)
    assert (attempt.actor, attempt.application_no) == ("risk", application_no)
    assert attempt.detail["refusal"] == "Forbidden" and attempt.detail["task_id"] == task_id
    r = await system.call("POST", f"/api/v1/tasks/{task_id}/claim", user="risk")
    assert r.status_code == 403
    assert task_row(system, task_id).assignee is None

    r = await system.call("POST", url, user="ops", json={"decision": "maybe"})
    assert_422_names(r, "decision")
    assert "approve, return, reject" in r.json()["detail"][0]["msg"]

    r = await system.call("POST", url, user="ops", json={"decision": "approve", "surprise": 1})
    assert_422_names(r, "surprise")

    missing = uuid.uuid4()
    r = await system.call(
        "POST", f"/api/v1/tasks/{missing}/decision", user="ops", json={"decision": "approve"}
    )
    assert r.status_code == 404
    assert str(missing) in r.json()["detail"]

    await _assert_untouched(system, application_no, task_id, "INTAKE_REVIEW", audit)

    r = await system.call("POST", url, user="ops", json={"decision": "approve"})
    assert r.status_code == 200, r.text

    r = await system.call("POST", url, user="ops2", json={"decision": "reject"})
    assert r.status_code == 409
    assert "not open" in r.json()["detail"]
    task = task_row(system, task_id)
    assert (task.status, task.decision, task.decided_by) == ("completed", "approve", "ops")
    view = await loan_view(system, application_no)
    assert view["stage"] == "RISK_REVIEW"


async def test_the_maker_of_an_application_cannot_review_it(system: System) -> None:
    with Session(system.engine) as s:
        s.add(
            User(
                username="both",
                full_name="两者 (officer and operations)",
                roles=[Role.BUSINESS_OFFICER.value, Role.OPERATIONS_SPECIALIST.value],
                password_hash=hash_password(DEMO_PASSWORD),
            )
        )
        s.commit()
    application_no = await submit(system, user="both")
    view = await drive(system, application_no, "INTAKE_REVIEW")
    task_id = view["pending_task"]["id"]
    audit = _audit(system, application_no)

    r = await system.call(
        "POST", f"/api/v1/tasks/{task_id}/decision", user="both", json={"decision": "approve"}
    )
    assert r.status_code == 409
    assert "another person must decide" in r.json()["detail"]
    await _assert_untouched(system, application_no, task_id, "INTAKE_REVIEW", audit)
    # The attempt is on the trail for the auditor.
    [attempt] = rows(system, AuditEvent, AuditEvent.action == FOUR_EYES_REFUSED)
    assert (attempt.actor, attempt.application_no) == ("both", application_no)
    assert attempt.detail["refusal"] == "MakerChecker"
    assert attempt.detail["task_id"] == task_id and attempt.detail["decision"] == "approve"

    r = await system.call(
        "POST", f"/api/v1/tasks/{task_id}/decision", user="ops", json={"decision": "approve"}
    )
    assert r.status_code == 200, r.text
    assert task_row(system, task_id).decided_by == "ops"


async def test_a_claimed_task_belongs_to_its_holder(system: System) -> None:
    application_no, view = await new_loan(system)
    task_id = view["pending_task"]["id"]
    task_url = f"/api/v1/tasks/{task_id}"

    r = await system.call("POST", f"{task_url}/claim", user="ops")
    assert r.status_code == 200 and r.json()["assignee"] == "ops"
    audit = _audit(system, application_no)  # with the claim's own row

    r = await system.call("POST", f"{task_url}/claim", user="ops2")
    assert r.status_code == 409
    assert r.json()["detail"] == "claimed by ops"
    r = await system.call("POST", f"{task_url}/decision", user="ops2", json={"decision": "approve"})
    assert r.status_code == 409
    assert "claimed by ops" in r.json()["detail"]
    r = await system.call("POST", f"{task_url}/unclaim", user="ops2")
    assert r.status_code == 409
    assert task_row(system, task_id).assignee == "ops"
    await _assert_untouched(system, application_no, task_id, "INTAKE_REVIEW", audit)

    r = await system.call("POST", f"{task_url}/unclaim", user="ops")
    assert r.status_code == 200 and r.json()["assignee"] is None
    assert task_row(system, task_id).assignee is None

    r = await system.call("POST", f"{task_url}/claim", user="ops2")
    assert r.status_code == 200 and r.json()["assignee"] == "ops2"
    r = await system.call("POST", f"{task_url}/decision", user="ops2", json={"decision": "approve"})
    assert r.status_code == 200, r.text
    assert task_row(system, task_id).decided_by == "ops2"


def _apr_percent(principal: Decimal, annual_rate: Decimal, n: int) -> str:
    """The all-in rate as the ceiling message prints it (12 × monthly IRR, 4 decimals of %)."""
    payments = [
        float(line["payment"]) for line in equal_installment_rows(principal, annual_rate, n)
    ]
    irr = npf.irr([-float(principal), *payments])
    return f"{12 * irr * 100:.4f}%"


async def test_product_matching_refuses_invalid_terms(system: System) -> None:
    application_no, view = await new_loan(system, "PRODUCT_MATCHING")
    task_id = view["pending_task"]["id"]
    audit = _audit(system, application_no)
    url = f"/api/v1/tasks/{task_id}/decision"
    too_dear = _apr_percent(Decimal("50000.00"), Decimal("0.30"), 6)
    # The ceiling: 4 × the one-year LPR in force today (3.00 % since 2025-05-20), under 24 %.
    today = business_date(await system.env.get_current_time(), system.settings.business_timezone)
    cap = min(4 * default_lpr_table().in_force(today).one_year, Decimal("0.24"))

    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"amount": "60000.00"}, "data.amount", "exceeds the requested amount 50000.00"),
        ({"amount": "0"}, "data.amount", "greater than zero"),
        ({"amount": "100.001"}, "data.amount", "two decimal places"),
        ({"annual_rate": "1.5"}, "data.annual_rate", "between 0 and 1"),
        ({"annual_rate": "abc"}, "data.annual_rate", "decimal fraction"),
        ({"term_months": 0}, "data.term_months", "between 1 and 360"),
        ({"method": "weird"}, "data.method", "equal_installment"),
        (
            {"annual_rate": "0.30"},
            "data.annual_rate",
            f"all-in rate {too_dear} exceeds the ceiling {cap * 100:.4f}%",
        ),
    ]
    failures = []
    for change, field, reason in cases:
        r = await system.call(
            "POST",
            url,
            user="product",
            json={"decision": "approve", "data": {**PRODUCT_TERMS, **change}},
        )
        if (
            r.status_code != 422
            or error_fields(r) != [field]
            or reason not in r.json()["detail"][0]["msg"]
        ):
            failures.append(
                f"{change}: expected 422 naming {field} with {reason!r}, got {r.status_code} "
                f"{r.text}"
            )
        await _assert_untouched(system, application_no, task_id, "PRODUCT_MATCHING", audit)
    assert view["terms"] is None
    assert (await loan_view(system, application_no))["terms"] is None
    assert not failures, "\n".join(failures)

    r = await system.call(
        "POST", url, user="product", json={"decision": "approve", "data": PRODUCT_TERMS}
    )
    assert r.status_code == 200, r.text
    assert (await loan_view(system, application_no))["terms"]["annual_rate"] == "0.108000"


# ---- disbursement (four eyes) and payments -------------------------------------------------


async def test_disbursement_four_eyes_then_payment_errors(system: System) -> None:
    application_no, view = await new_loan(system, "DISBURSEMENT")
    task_id = view["pending_task"]["id"]
    audit = _audit(system, application_no)
    url = f"/api/v1/loans/{application_no}/payments"
    # The workflow's clock (the time-skipping server may run ahead of the wall clock).
    now = (await system.env.get_current_time()).isoformat()

    # No payment before the money has moved.
    body = {"amount": "100.00", "paid_at": now, "external_ref": "early-1"}
    r = await system.call("POST", url, user="ops", json=body)
    assert r.status_code == 409
    assert "DISBURSEMENT" in r.json()["detail"]

    # ops approved the intake, so ops may not approve the disbursement too.
    decision = f"/api/v1/tasks/{task_id}/decision"
    r = await system.call("POST", decision, user="ops", json={"decision": "approve"})
    assert r.status_code == 409
    assert "another person must decide" in r.json()["detail"]
    await _assert_untouched(system, application_no, task_id, "DISBURSEMENT", audit)
    assert count(system, Disbursement) == 0
    assert count(system, Payment) == 0

    r = await system.call("POST", decision, user="ops2", json={"decision": "approve"})
    assert r.status_code == 200, r.text
    assert task_row(system, task_id).decided_by == "ops2"
    # The checker: neither the maker (ops2) nor the intake reviewer (ops).
    auth_id = await system.in_thread(
        driver(system).wait_task, "ops3", application_no, "disbursement_authorization"
    )
    authorize = f"/api/v1/tasks/{auth_id}/decision"
    for who in ("ops2", "ops"):
        r = await system.call("POST", authorize, user=who, json={"decision": "authorize"})
        assert r.status_code == 409, r.text
    r = await system.call("POST", authorize, user="ops3", json={"decision": "authorize"})
    assert r.status_code == 200, r.text
    await drive(system, application_no, "SERVICING", frm="SERVICING")
    assert [d.approved_by for d in rows(system, Disbursement)] == ["ops3"]

    before = await loan_view(system, application_no)
    now = (await system.env.get_current_time()).isoformat()

    r = await system.call(
        "POST", url, user="officer", json={"amount": "100.00", "paid_at": now, "external_ref": "x"}
    )
    assert r.status_code == 403
    for amount in ("0", "-1", "1.001"):
        r = await system.call(
            "POST", url, user="ops", json={"amount": amount, "paid_at": now, "external_ref": "bad"}
        )
        assert_422_names(r, "amount")
    r = await system.call(
        "POST",
        url,
        user="ops",
        json={"amount": "100.00", "paid_at": "2026-01-05T10:00:00", "external_ref": "naive"},
    )
    assert_422_names(r, "paid_at")
    assert count(system, Payment) == 0
    assert (await loan_view(system, application_no))["installments"] == before["installments"]

    body = {"amount": "100.00", "paid_at": now, "external_ref": "bank-0001"}
    first = await system.call("POST", url, user="ops", json=body)
    assert first.status_code == 201, first.text
    assert first.json()["duplicate"] is False
    second = await system.call("POST", url, user="ops2", json=body)
    assert second.status_code == 200, second.text
    assert second.json()["duplicate"] is True
    assert second.json()["amount"] == "100.00"
    assert second.json()["allocation"] == first.json()["allocation"]

    r = await system.call("POST", url, user="ops", json={**body, "amount": "200.00"})
    assert r.status_code == 409
    assert "bank-0001" in r.json()["detail"]

    payments = rows(system, Payment, Payment.application_no == application_no)
    assert [(p.external_ref, p.amount) for p in payments] == [("bank-0001", Decimal("100.00"))]
    after = await loan_view(system, application_no)
    assert sum(Decimal(i["paid"]) for i in after["installments"]) == Decimal("100.00")


# ---- withdrawal and the loan view ----------------------------------------------------------


async def test_withdrawal_errors(system: System) -> None:
    application_no, view = await new_loan(system, "RISK_REVIEW")
    task_id = view["pending_task"]["id"]
    audit = _audit(system, application_no)
    url = f"/api/v1/loans/{application_no}/withdraw"

    r = await system.call("POST", url, user="risk", json={"reason": "客户放弃"})
    assert r.status_code == 403
    r = await system.call("POST", url, user="officer", json={"reason": ""})
    assert_422_names(r, "reason")
    await _assert_untouched(system, application_no, task_id, "RISK_REVIEW", audit)

    r = await system.call("POST", url, user="officer", json={"reason": "客户放弃"})
    assert r.status_code == 200, r.text
    assert r.json()["stage"] == "WITHDRAWN"
    assert (await loan_view(system, application_no))["stage"] == "WITHDRAWN"
    task = task_row(system, task_id)
    assert task.status == "cancelled" and task.decision is None

    r = await system.call("POST", url, user="officer", json={"reason": "again"})
    assert r.status_code == 409
    assert (await loan_view(system, application_no))["stage"] == "WITHDRAWN"


async def test_loan_view_errors_masking_and_health(system: System) -> None:
    r = await system.call("GET", "/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}  # alive; /readyz checks the dependencies
    r = await system.call("GET", "/readyz")
    assert r.json()["database"] == "ok" and r.json()["temporal"] == "ok"

    r = await system.call("GET", "/api/v1/loans/A20260101-NOSUCH", user="manager")
    assert r.status_code == 404
    assert "A20260101-NOSUCH" in r.json()["detail"]
    r = await system.call("GET", "/api/v1/loans/A20260101-NOSUCH/timeline", user="manager")
    assert r.status_code == 404

    application_no, _ = await new_loan(system)
    assert DEMO_BORROWER["name"] == "张三丰"
    assert (await loan_view(system, application_no, user="cs"))["borrower_name"] == "张**"
    assert (await loan_view(system, application_no, user="manager"))["borrower_name"] == "张三丰"
    listed = await system.call("GET", "/api/v1/loans", user="cs")
    assert [i["borrower_name"] for i in listed.json()["items"]] == ["张**"]
