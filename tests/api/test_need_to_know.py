"""Need to know on every object: a business officer sees and acts on their own applications
only (submitted, or assigned to them) — another officer's are answered 404 exactly as a missing
one; customer service reads the timeline with the borrower's identifiers masked; request bodies
cannot set server-owned fields. The API alone over a database of each kind (nothing here
reaches Temporal: every refusal comes before it)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from api.app import create_app
from domain.masking import mask_id_number, mask_name, mask_phone
from loanops.demo import DEMO_BORROWER
from loanops.security import create_access_token, hash_password
from loanops.seed import seed_demo_users
from loanops.settings import Settings
from models.audit import append_audit
from models.tables import Application, Borrower, Notice, Task, User
from tests.api.helpers import application_body
from tests.conftest import DEMO_PASSWORD

MINE = "A20260101-MINE01"
THEIRS = "A20260101-THEIRS"
MISSING = "A20260101-NOSUCH"


@functools.cache
def _demo_hash() -> str:
    return hash_password(DEMO_PASSWORD)


@dataclass
class Api:
    http: TestClient
    settings: Settings
    engine: Engine
    tasks: dict[str, uuid.UUID]

    def call(self, user: str, method: str, url: str, **kw: Any) -> httpx.Response:
        with Session(self.engine) as s:
            roles = s.exec(select(User).where(User.username == user)).one().roles
        token = create_access_token(
            subject=user, roles=roles, secret=self.settings.secret_key, minutes=15
        )
        return self.http.request(method, url, headers={"Authorization": f"Bearer {token}"}, **kw)


def _seed(engine: Engine) -> dict[str, uuid.UUID]:
    """Two applications of one borrower: ``MINE`` submitted by ``officer``, ``THEIRS`` by
    ``officer2``; an open offer_confirmation task on each; a signing event in MINE's trail."""
    seed_demo_users(engine, password=DEMO_PASSWORD, password_hash=_demo_hash())
    now = datetime.now(UTC)
    tasks = {}
    with Session(engine) as s:
        s.add(
            User(
                username="officer2",
                full_name="钱业务",
                roles=["business_officer"],
                password_hash=_demo_hash(),
            )
        )
        b = DEMO_BORROWER
        borrower = Borrower(
            name=b["name"],
            id_number=b["id_number"],
            phone=b["phone"],
            bank_card=b["bank_card"],
            monthly_income=Decimal(b["monthly_income"]),
        )
        s.add(borrower)
        s.flush()
        for no, by in ((MINE, "officer"), (THEIRS, "officer2")):
            s.add(
                Application(
                    application_no=no,
                    borrower_id=borrower.id,
                    amount=Decimal("50000.00"),
                    term_months=6,
                    purpose="店铺装修",
                    repayment_source="经营收入",
                    stage="OFFER_CONFIRMATION",
                    submitted_by=by,
                )
            )
            tasks[no] = uuid.uuid4()
            s.add(
                Task(
                    id=tasks[no],
                    application_no=no,
                    kind="offer_confirmation",
                    candidate_role="business_officer",
                    due_at=now + timedelta(days=1),
                    created_at=now,
                )
            )
        # Through the one way to append to the (hash-chained) trail.
        append_audit(
            s,
            key=f"test/{uuid.uuid4()}",
            application_no=MINE,
            actor="borrower",
            action="contract.signed",
            detail={
                "signer_name": b["name"],
                "note": f"签署人 {b['name']} 身份证 {b['id_number']} 手机 {b['phone']}",
            },
            occurred_at=now,
        )
        s.commit()
    return tasks


@pytest.fixture
def api(engine: Engine, database_url: str) -> Iterator[Api]:
    tasks = _seed(engine)
    settings = Settings(
        environment="test", database_url=database_url, temporal_address="127.0.0.1:9"
    )
    with TestClient(create_app(settings, engine=engine)) as http:
        yield Api(http, settings, engine, tasks)


# Every route on one application: an officer's view of another's must be a missing one's.
OBJECT_ROUTES = [
    ("GET", "/api/v1/applications/{no}", None),
    ("GET", "/api/v1/applications/{no}/risk-report", None),
    ("GET", "/api/v1/applications/{no}/risk-report.pdf", None),
    ("GET", "/api/v1/applications/{no}/documents", None),
    ("GET", f"/api/v1/applications/{{no}}/documents/{uuid.UUID(int=1)}", None),
    ("GET", "/api/v1/loans/{no}", None),
    ("GET", "/api/v1/loans/{no}/timeline", None),
    ("GET", "/api/v1/loans/{no}/notices", None),
    ("GET", "/api/v1/loans/{no}/contract.pdf", None),
    ("GET", "/api/v1/loans/{no}/settlement-certificate.pdf", None),
    ("GET", "/api/v1/loans/{no}/classification", None),
    ("POST", "/api/v1/loans/{no}/payoff-quote", {"as_of": "2026-06-01"}),
    ("POST", "/api/v1/loans/{no}/withdraw", {"reason": "the borrower walked away"}),
]


@pytest.mark.parametrize(("method", "url", "body"), OBJECT_ROUTES, ids=lambda x: str(x))
def test_another_officers_application_is_answered_as_a_missing_one(
    api: Api, method: str, url: str, body: Any
) -> None:
    theirs = api.call("officer", method, url.format(no=THEIRS), json=body)
    missing = api.call("officer", method, url.format(no=MISSING), json=body)
    assert theirs.status_code == missing.status_code == 404, (theirs.text, missing.text)
    assert theirs.json()["detail"].replace(THEIRS, "X") == missing.json()["detail"].replace(
        MISSING, "X"
    )


def test_the_officer_sees_their_own_and_the_manager_and_auditor_see_all(api: Api) -> None:
    assert api.call("officer", "GET", f"/api/v1/applications/{MINE}").status_code == 200
    assert api.call("officer2", "GET", f"/api/v1/applications/{THEIRS}").status_code == 200
    assert api.call("officer2", "GET", f"/api/v1/applications/{MINE}").status_code == 404
    for user in ("manager", "auditor", "risk"):
        for no in (MINE, THEIRS):
            assert api.call(user, "GET", f"/api/v1/applications/{no}").status_code == 200

    def listed(user: str) -> set[str]:
        r = api.call(user, "GET", "/api/v1/loans")
        assert r.status_code == 200, r.text
        assert r.json()["total"] == len(r.json()["items"])
        return {i["application_no"] for i in r.json()["items"]}

    assert listed("officer") == {MINE}
    assert listed("officer2") == {THEIRS}
    assert listed("manager") == listed("auditor") == {MINE, THEIRS}


def test_an_officer_assigned_by_the_manager_sees_the_application_too(
    api: Api, engine: Engine
) -> None:
    url = f"/api/v1/applications/{MINE}/assigned-officer"
    for who in ("risk", "nobody", "officer2x"):  # not an active business officer
        r = api.call("manager", "PUT", url, json={"assigned_officer": who})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "assigned_officer"]
    assert api.call("officer", "PUT", url, json={"assigned_officer": "officer2"}).status_code == 403
    r = api.call("manager", "PUT", url, json={"assigned_officer": "officer2"})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "application_no": MINE,
        "submitted_by": "officer",
        "assigned_officer": "officer2",
    }
    assert api.call("officer2", "GET", f"/api/v1/applications/{MINE}").status_code == 200
    r = api.call("officer2", "GET", "/api/v1/loans")
    assert {i["application_no"] for i in r.json()["items"]} == {MINE, THEIRS}
    timeline = api.call("manager", "GET", f"/api/v1/loans/{MINE}/timeline").json()["entries"]
    assigned = [e for e in timeline if e["action"] == "application.officer_assigned"]
    assert assigned[0]["detail"] == {"before": None, "after": "officer2"}
    # Removed again: officer2 no longer sees it.
    assert api.call("manager", "PUT", url, json={"assigned_officer": None}).status_code == 200
    assert api.call("officer2", "GET", f"/api/v1/applications/{MINE}").status_code == 404


def test_tasks_on_another_officers_application_are_neither_listed_nor_decided(api: Api) -> None:
    r = api.call("officer", "GET", "/api/v1/tasks")
    assert [t["application_no"] for t in r.json()["items"]] == [MINE]
    theirs = api.tasks[THEIRS]
    nowhere = uuid.uuid4()
    for action, body in (("claim", None), ("decision", {"decision": "accept"})):
        a = api.call("officer", "POST", f"/api/v1/tasks/{theirs}/{action}", json=body)
        b = api.call("officer", "POST", f"/api/v1/tasks/{nowhere}/{action}", json=body)
        assert a.status_code == b.status_code == 404, a.text
        assert a.json()["detail"].replace(str(theirs), "X") == b.json()["detail"].replace(
            str(nowhere), "X"
        )
    # Its own officer claims it; nothing of the other's changed.
    assert api.call("officer2", "POST", f"/api/v1/tasks/{theirs}/claim").status_code == 200
    assert api.call("officer", "POST", f"/api/v1/tasks/{api.tasks[MINE]}/claim").status_code == 200


def test_customer_service_reads_the_timeline_with_the_borrower_masked(api: Api) -> None:
    b = DEMO_BORROWER
    cs = api.call("cs", "GET", f"/api/v1/loans/{MINE}/timeline")
    assert cs.status_code == 200, cs.text
    (entry,) = cs.json()["entries"]
    assert entry["detail"]["signer_name"] == mask_name(b["name"])
    note = entry["detail"]["note"]
    for raw in (b["name"], b["id_number"], b["phone"]):
        assert raw not in cs.text
    assert mask_id_number(b["id_number"]) in note and mask_phone(b["phone"]) in note
    manager = api.call("manager", "GET", f"/api/v1/loans/{MINE}/timeline").json()
    assert manager["entries"][0]["detail"]["signer_name"] == b["name"]


def test_customer_service_reads_notice_texts_with_the_borrower_masked(
    api: Api, engine: Engine
) -> None:
    b = DEMO_BORROWER
    with Session(engine) as s:
        s.add(
            Notice(
                key=f"test/{uuid.uuid4()}",
                application_no=MINE,
                channel="inbox",
                recipient="officer",
                template="application_rejected",
                payload={"reason": f"{b['name']} 的手机 {b['phone']} 无法接通"},
                created_at=datetime.now(UTC),
            )
        )
        s.commit()
    cs = api.call("cs", "GET", f"/api/v1/loans/{MINE}/notices")
    assert cs.status_code == 200, cs.text
    (notice,) = cs.json()["items"]
    assert mask_name(b["name"]) in notice["text"] and mask_phone(b["phone"]) in notice["text"]
    assert b["name"] not in cs.text and b["phone"] not in cs.text
    manager = api.call("manager", "GET", f"/api/v1/loans/{MINE}/notices").json()
    assert b["phone"] in manager["items"][0]["text"]


def test_customer_service_reads_task_contexts_with_personal_data_masked(
    api: Api, engine: Engine
) -> None:
    phone = DEMO_BORROWER["phone"]
    now = datetime.now(UTC)
    with Session(engine) as s:
        s.add(
            Task(
                id=uuid.uuid4(),
                application_no=MINE,
                kind="overdue_call",
                candidate_role="customer_service",
                due_at=now + timedelta(days=1),
                created_at=now,
                context={"installment": 1, "phone": phone},
            )
        )
        s.commit()
    cs = api.call("cs", "GET", "/api/v1/tasks?kind=overdue_call")
    (task,) = cs.json()["items"]
    assert task["context"] == {"installment": 1, "phone": mask_phone(phone)}
    manager = api.call("manager", "GET", "/api/v1/tasks?kind=overdue_call").json()
    assert manager["items"][0]["context"]["phone"] == phone


@pytest.mark.parametrize(
    ("method", "url", "body", "field"),
    [
        ("POST", "/api/v1/applications", application_body(stage="DISBURSEMENT"), "stage"),
        ("POST", "/api/v1/applications", application_body(submitted_by="manager"), "submitted_by"),
        (
            "POST",
            "/api/v1/applications",
            application_body(approved_amount="900000.00"),
            "approved_amount",
        ),
        (
            "POST",
            "/api/v1/applications",
            application_body(borrower={**DEMO_BORROWER, "blacklisted": False}),
            "borrower.blacklisted",
        ),
        (
            "POST",
            f"/api/v1/loans/{MINE}/withdraw",
            {"reason": "x", "stage": "WITHDRAWN"},
            "stage",
        ),
    ],
)
def test_a_body_cannot_set_server_owned_fields(
    api: Api, engine: Engine, method: str, url: str, body: dict[str, Any], field: str
) -> None:
    r = api.call("officer", method, url, json=body)
    assert r.status_code == 422, r.text
    locs = [".".join(map(str, e["loc"][1:])) for e in r.json()["detail"]]
    assert field in locs
    with Session(engine) as s:  # nothing recorded
        assert len(s.exec(select(Application.id)).all()) == 2


def test_a_task_decision_cannot_carry_extra_fields(api: Api) -> None:
    r = api.call(
        "officer",
        "POST",
        f"/api/v1/tasks/{api.tasks[MINE]}/decision",
        json={"decision": "accept", "decided_by": "manager"},
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "decided_by"]
