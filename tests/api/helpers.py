"""Shared helpers for the API error and quote tests: submitting applications, driving a loan to a
stage through the real API (with ``DemoDriver``), reading rows, and independent money figures."""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Callable
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any, TypeVar

import httpx
from sqlalchemy import func
from sqlmodel import Session, SQLModel, col, select

from loanops.demo import DEMO_BORROWER, DemoDriver, read_sms_from_handset
from loanops.security import create_access_token
from loanops.seed import DEMO_USERS
from models.tables import Document, Task, User
from tests.conftest import DEMO_PASSWORD, System

M = TypeVar("M", bound=SQLModel)

# The stages a healthy loan passes, in order, and the human task each one waits on.
ORIGINATION = [
    "INTAKE_REVIEW",
    "RISK_REVIEW",
    "PRODUCT_MATCHING",
    "OFFER_CONFIRMATION",
    "CONTRACT_SIGNING",
    "DISBURSEMENT",
    "SERVICING",
]
STAGE_TASK = {
    "INTAKE_REVIEW": "intake_review",
    "RISK_REVIEW": "risk_review",
    "PRODUCT_MATCHING": "product_matching",
    "OFFER_CONFIRMATION": "offer_confirmation",
    "DISBURSEMENT": "disbursement",
}

REQUESTED_AMOUNT = "50000.00"
# A choice among the proposals of the seeded catalog (domain.products.SEED_CATALOG): the
# small-business operating loan fits the demo borrower whatever grade A-D the score gives.
PRODUCT_TERMS: dict[str, Any] = {
    "product_code": "SMB_OPERATING",
    "product_version": 1,
    "amount": "50000.00",
    "term_months": 6,
    "annual_rate": "0.108",
    "method": "equal_installment",
}

FEN = Decimal("0.01")


OMIT: Any = object()  # an override that drops the key


def application_body(**overrides: Any) -> dict[str, Any]:
    """A valid application (the demo borrower, ¥50,000 over 6 months); overrides replace keys,
    and an override of ``OMIT`` removes one."""
    body: dict[str, Any] = {
        "borrower": dict(DEMO_BORROWER),
        "amount": REQUESTED_AMOUNT,
        "term_months": 6,
        "purpose": "店铺装修",
        "repayment_source": "经营收入",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not OMIT}


async def submit(system: System, *, user: str = "officer", **overrides: Any) -> str:
    r = await system.call(
        "POST", "/api/v1/applications", user=user, json=application_body(**overrides)
    )
    assert r.status_code == 201, r.text
    assert r.json()["stage"] == "INTAKE_REVIEW"
    return str(r.json()["application_no"])


class FastDriver(DemoDriver):
    """``DemoDriver`` polling every 30 ms instead of 200 ms, to keep the suite quick."""

    POLL = 0.03


def driver(system: System) -> DemoDriver:
    d = FastDriver(system.http, password=DEMO_PASSWORD, say=lambda _: None)
    d.tokens = system.tokens  # one set of logins per test, shared with System.call
    return d


def mint_demo_tokens(system: System) -> None:
    """Log the demo users in without a password check: the same JWT the login endpoint issues
    (subject and roles from their rows), minted directly. A real login costs an argon2
    verification (~0.1 s), and a driven loan needs half a dozen of them; the login endpoint
    itself is exercised by the authentication tests."""
    with Session(system.engine) as s:
        users = s.exec(select(User).where(col(User.username).in_([u for u, _, _ in DEMO_USERS])))
        for user in users:
            system.tokens[user.username] = create_access_token(
                subject=user.username,
                roles=list(user.roles),
                secret=system.settings.secret_key,
                minutes=system.settings.access_token_minutes,
            )


def _ready_at(stage: str) -> Callable[[dict[str, Any]], bool]:
    kind = STAGE_TASK.get(stage)

    def ready(loan: dict[str, Any]) -> bool:
        if loan["stage"] != stage:
            return False
        if kind is not None:
            return loan["pending_task"] is not None and loan["pending_task"]["kind"] == kind
        if stage == "CONTRACT_SIGNING":
            return bool(loan["signing"] and loan["signing"]["link_sent_at"])
        if stage == "SERVICING":
            return bool(loan["installments"])
        return True

    return ready


def _drive(
    d: DemoDriver,
    application_no: str,
    until: str,
    terms: dict[str, Any],
    frm: str,
    system: System,
) -> dict[str, Any]:
    for step in _STEPS[ORIGINATION.index(frm) : ORIGINATION.index(until)]:
        step(d, application_no, terms, system)
    return d.wait_loan(application_no, f"reach {until}", _ready_at(until))


def _sign(d: DemoDriver, application_no: str, system: System) -> None:
    """The borrower signs with a one-time code; the manager seals for the lender."""
    d.wait_loan(application_no, "contract ready", _ready_at("CONTRACT_SIGNING"))
    d.sign_as_borrower(application_no, lambda no, template: _sms(system, no, template))
    d.decide("manager", application_no, "lender_seal", "seal")


# The step that moves a loan out of each origination stage, in order.
_STEPS: list[Callable[[DemoDriver, str, dict[str, Any], Any], object]] = [
    lambda d, no, _, __: d.decide("ops", no, "intake_review", "approve", comment="资料齐全"),
    lambda d, no, _, __: d.decide("risk", no, "risk_review", "approve", comment="信用良好"),
    lambda d, no, terms, _: d.decide("product", no, "product_matching", "approve", data=terms),
    lambda d, no, _, __: d.decide("officer", no, "offer_confirmation", "accept"),
    lambda d, no, _, system: _sign(d, no, system),
    # The payout's four eyes (ops approved the intake): ops2 requests, ops3 authorizes.
    lambda d, no, _, __: d.authorize_payout(no),
]


async def drive(
    system: System,
    application_no: str,
    until: str,
    terms: dict[str, Any] | None = None,
    *,
    frm: str = "INTAKE_REVIEW",
) -> dict[str, Any]:
    """Take a loan waiting in ``frm`` along the happy path until it waits in ``until``; returns
    the loan view (as the manager sees it) once that stage's task, link or schedule is ready."""
    result: dict[str, Any] = await system.in_thread(
        _drive, driver(system), application_no, until, terms or PRODUCT_TERMS, frm, system
    )
    return result


async def new_loan(
    system: System, until: str = "INTAKE_REVIEW", terms: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    application_no = await submit(system)
    return application_no, await drive(system, application_no, until, terms)


async def loan_view(system: System, application_no: str, user: str = "manager") -> dict[str, Any]:
    r = await system.call("GET", f"/api/v1/loans/{application_no}", user=user)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


# ---- the borrower's phone -------------------------------------------------------------------


def _sms(system: System, application_no: str, template: str) -> dict[str, str]:
    """THE one place the tests read what the borrower's phone received: the newest SMS of
    ``template`` for ``application_no`` on the sandbox SMS gateway's handset, parsed."""
    return read_sms_from_handset(system.engine, system.sms.url, application_no, template)


async def signing_link(system: System, application_no: str) -> str:
    """The signing link the borrower received by SMS (read off the event loop: the test
    system's notice relay runs on it)."""
    sms = await system.in_thread(_sms, system, application_no, "contract_signing_link")
    return str(sms["url"])


async def sign_path(system: System, application_no: str) -> str:
    """The API path of the borrower's signing link (as received by SMS)."""
    link = await signing_link(system, application_no)
    return "/api/v1/sign/" + link.rsplit("/api/v1/sign/", 1)[1]


async def latest_signing_code(system: System, application_no: str) -> str:
    """The newest one-time code the borrower received by SMS."""
    sms = await system.in_thread(_sms, system, application_no, "signing_code")
    return str(sms["code"])


async def request_code(system: System, application_no: str) -> str:
    """Ask for a code through the link (202) and read it on the borrower's phone."""
    r = await system.call("POST", f"{await sign_path(system, application_no)}/code")
    assert r.status_code == 202, r.text
    return await latest_signing_code(system, application_no)


DISCLOSURE_IDS = ["cost", "schedule", "penalty", "credit_record", "own_decision"]


def signature(code: str = "000000", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": code,
        "confirmed": list(DISCLOSURE_IDS),
        "signer_name": DEMO_BORROWER["name"],
        "id_last4": DEMO_BORROWER["id_number"][-4:],
    }
    body.update(overrides)
    return body


# ---- the database ------------------------------------------------------------------------


def count(system: System, model: type[M], *where: Any) -> int:
    with Session(system.engine) as s:
        return int(s.exec(select(func.count()).select_from(model).where(*where)).one())


def rows(system: System, model: type[M], *where: Any) -> list[M]:
    with Session(system.engine) as s:
        return list(s.exec(select(model).where(*where)).all())


def task_row(system: System, task_id: str) -> Task:
    with Session(system.engine) as s:
        task = s.get(Task, uuid.UUID(task_id))
        assert task is not None, f"task {task_id} has no row"
        return task


def contract_row(system: System, application_no: str) -> Document:
    found = rows(
        system, Document, Document.application_no == application_no, Document.kind == "contract"
    )
    assert len(found) == 1, found
    return found[0]


# ---- HTTP assertions ---------------------------------------------------------------------


def error_fields(r: httpx.Response) -> list[str]:
    """The fields a 422 names: 'borrower.id_number' from FastAPI's ``detail[*].loc`` (without
    the leading 'body'), or the 'field:' prefix of a handler's plain-text detail."""
    detail = r.json()["detail"]
    if isinstance(detail, list):
        return [".".join(str(p) for p in e["loc"][1:]) for e in detail]
    return [str(detail).split(":", 1)[0]]


def assert_422_names(r: httpx.Response, field: str) -> None:
    assert r.status_code == 422, f"expected 422 naming {field}, got {r.status_code}: {r.text}"
    assert error_fields(r) == [field], f"expected exactly {field!r} named, got {r.text}"


# ---- independent money figures -------------------------------------------------------------


def fen(x: Decimal) -> Decimal:
    return x.quantize(FEN, rounding=ROUND_HALF_UP)


def add_months_clamped(d: date, k: int) -> date:
    """d plus k months, clamped to the month's last day (Jan 31 + 1 → Feb 28)."""
    y, m = divmod(d.month - 1 + k, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def equal_installment_rows(
    principal: Decimal, annual_rate: Decimal, n: int, monthly_fee: Decimal = Decimal(0)
) -> list[dict[str, Decimal]]:
    """等额本息 from the textbook formula: level payment P·r(1+r)^n/((1+r)^n−1) to the fen,
    interest on the remaining principal each month, the last installment clears the rest."""
    with localcontext() as ctx:
        ctx.prec = 50
        r = annual_rate / 12
        growth = (1 + r) ** n
        level = fen(principal * r * growth / (growth - 1)) if r else fen(principal / n)
        remaining = principal
        out = []
        for k in range(1, n + 1):
            interest = fen(remaining * r)
            part = remaining if k == n else level - interest
            remaining -= part
            out.append(
                {
                    "principal": part,
                    "interest": interest,
                    "fee": monthly_fee,
                    "payment": part + interest + monthly_fee,
                    "remaining_principal": remaining,
                }
            )
        return out


def money(x: Decimal) -> str:
    return f"{fen(x):.2f}"
