"""``loanops demo``: one loan from application to SETTLED through the HTTP API, as the demo users.

It pays the installments early (one payment per installment, right away) instead of waiting for
the due dates. Works against any ``httpx.Client`` aimed at the API, including FastAPI's
TestClient, so the end-to-end test runs the very same script.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import Engine

from domain.products import choice_data

DEMO_BORROWER: dict[str, Any] = {
    "name": "张三丰",
    "id_number": "110105198805120026",
    "phone": "13800138000",
    "bank_card": "6222020200112233446",
    "monthly_income": "18000.00",
    "employment_years": 6,
}


def _demo_png(label: bytes) -> bytes:
    """A small PNG-signed file (the store decides type by content, not by name)."""
    return b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + label.ljust(64, b"\x00")


# The papers the demo officer attaches: the required documents of the intake checks.
DEMO_DOCUMENTS: dict[str, tuple[str, bytes]] = {
    "id_card_front": ("id_front.png", _demo_png(b"demo id card front")),
    "id_card_back": ("id_back.png", _demo_png(b"demo id card back")),
    "income_proof": ("income.pdf", b"%PDF-1.4\n% demo income proof\n%%EOF\n"),
}


class DemoFailed(Exception):
    """The system did not do what the demo expected; the message says what."""


# What the borrower's phone received: (application_no, template) → the message's payload.
SmsReader = Callable[[str, str], dict[str, Any]]


# What each SMS the borrower acts on carries, read back from the text the phone received.
_SMS_FIELDS = {
    "contract_signing_link": re.compile(r"(?P<url>https?://\S+?/api/v1/sign/[^\s，。]+)"),
    "signing_code": re.compile(r"验证码为(?P<code>\d{6})"),
}


def read_sms_from_handset(
    engine: Engine,
    sms_url: str,
    application_no: str,
    template: str,
    *,
    timeout: float = 60.0,
) -> dict[str, str]:
    """What the borrower's phone received: the newest ``template`` SMS queued for
    ``application_no``, once the notice relay has handed it to the SMS gateway, read from the
    sandbox gateway's handset of the borrower's phone (``GET /v1/messages?to=``) and parsed
    (``url`` of a signing link, ``code`` of a signing code). The outbox row only says which
    message to look for: its secret payload is redacted once sent."""
    from sqlmodel import Session, col, select

    from adapters.sms import HttpSmsGateway
    from models.tables import Application, Notice, borrower_data_of

    deadline = time.monotonic() + timeout
    with HttpSmsGateway(sms_url) as gateway:
        while True:
            with Session(engine) as s:
                notice = s.exec(
                    select(Notice)
                    .where(
                        Notice.application_no == application_no,
                        Notice.channel == "sms",
                        Notice.template == template,
                    )
                    .order_by(col(Notice.created_at).desc())
                ).first()
                app = s.exec(
                    select(Application).where(Application.application_no == application_no)
                ).first()
                borrower = borrower_data_of(s, app) if app is not None else None
            sent = notice.provider_message_id if notice is not None else None
            if sent is not None and borrower is not None:
                for message in gateway.received(borrower.phone):
                    if message.message_id == sent:
                        found = _SMS_FIELDS[template].search(message.text)
                        if found is None:
                            raise DemoFailed(f"the {template} SMS says nothing usable: {message}")
                        return found.groupdict()
            if time.monotonic() > deadline:
                raise DemoFailed(
                    f"no {template} SMS reached the borrower of {application_no} "
                    f"(outbox: {notice.status if notice else 'none queued'})"
                )
            time.sleep(0.2)


class DemoDriver:
    POLL = 0.2  # seconds between looks at the loan while the workflow works
    LONG_POLL = 10.0  # the longest one inbox look waits for a task (``GET /tasks?wait=``)

    def __init__(
        self,
        client: httpx.Client,
        *,
        password: str,
        say: Callable[[str], Any],
        patience: float = 60.0,
        timings: list[tuple[str, float]] | None = None,
    ) -> None:
        self.client = client
        # How long (seconds) a bot waits for a task or a stage before it gives up.
        self.patience = patience
        self.password = password
        self.say = say
        # Each decision call's (task kind, seconds from request to answer), when asked for.
        self.timings = timings
        self.tokens: dict[str, str] = {}
        # Per login: the refresh token and when (monotonic) to use it, a minute before the
        # short access token expires.
        self._renew: dict[str, tuple[str, float]] = {}

    def _keep(self, username: str, body: dict[str, Any]) -> None:
        self.tokens[username] = body["access_token"]
        if body.get("refresh_token"):
            at = time.monotonic() + max(0, int(body.get("expires_in", 0)) - 60)
            self._renew[username] = (body["refresh_token"], at)

    def login(self, username: str) -> dict[str, str]:
        renew = self._renew.get(username)
        if renew is not None and time.monotonic() >= renew[1]:
            r = self.client.post("/api/v1/auth/refresh", json={"refresh_token": renew[0]})
            self._keep(username, self.expect(r, 200, f"refresh the login of {username}"))
        if username not in self.tokens:
            r = self.client.post(
                "/api/v1/auth/token", data={"username": username, "password": self.password}
            )
            self._keep(username, self.expect(r, 200, f"log in as {username}"))
        return {"Authorization": f"Bearer {self.tokens[username]}"}

    @staticmethod
    def expect(r: httpx.Response, code: int, what: str) -> Any:
        if r.status_code != code:
            raise DemoFailed(f"{what}: HTTP {r.status_code} {r.text[:500]}")
        return r.json() if r.headers.get("content-type", "").startswith("application/json") else r

    def wait_task(
        self, username: str, application_no: str, kind: str, timeout: float | None = None
    ) -> str:
        """Poll the inbox until the task appears (the workflow opens it asynchronously)."""
        return str(self.open_task(username, application_no, kind, timeout)["id"])

    def open_task(
        self, username: str, application_no: str, kind: str, timeout: float | None = None
    ) -> dict[str, Any]:
        """The open task of ``kind`` as the inbox lists it (with its context), once it appears:
        the inbox answers as soon as it does (a long-poll, ``wait``), no polling here."""
        timeout = self.patience if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            r = self.client.get(
                "/api/v1/tasks",
                params={
                    "kind": kind,
                    "application_no": application_no,
                    "wait": round(min(left, self.LONG_POLL), 3),
                    "count": "false",
                },
                headers=self.login(username),
            )
            items = self.expect(r, 200, f"list {kind} tasks")["items"]
            if items:
                item: dict[str, Any] = items[0]
                return item
        raise DemoFailed(f"no {kind} task appeared for {application_no} within {timeout:.0f} s")

    def choose_product(self, application_no: str) -> dict[str, Any]:
        """The product manager takes the first (cheapest) of the catalog's proposals as
        proposed; returns the decision's data."""
        task = self.open_task("product", application_no, "product_matching")
        context = task.get("context") or {}
        proposals = context.get("proposals") or []
        for excluded in context.get("excluded") or []:
            self.say(
                f"  not eligible: {excluded['product_code']} ({'; '.join(excluded['reasons'])})"
            )
        if not proposals:
            raise DemoFailed(f"no product is eligible for {application_no}: {context}")
        chosen: dict[str, Any] = proposals[0]
        self.say(
            f"  proposed: {chosen['product_code']} v{chosen['product_version']} "
            f"¥{chosen['amount']} × {chosen['term_months']} months at {chosen['annual_rate']}, "
            f"APR {chosen['apr']}"
        )
        return choice_data(chosen)

    def decide(
        self, username: str, application_no: str, kind: str, decision: str, **extra: Any
    ) -> str:
        task_id = self.wait_task(username, application_no, kind)
        headers = self.login(username)
        started = time.perf_counter()
        r = self.client.post(
            f"/api/v1/tasks/{task_id}/decision",
            json={"decision": decision, **extra},
            headers=headers,
        )
        if self.timings is not None:
            self.timings.append((kind, time.perf_counter() - started))
        stage = str(self.expect(r, 200, f"{kind}: {decision}")["stage"])
        self.say(f"  {kind:<22} {decision:<8} by {username:<8} → {stage}")
        return stage

    def authorize_payout(self, application_no: str) -> str:
        """The payout's tiered four eyes (payout-v1): ops2 requests it (ops reviewed the
        intake), ops3 authorizes it, and above the policy's limit the manager authorizes too.
        Each decision answers once recorded (DISBURSEMENT: the payout runs after it); returns
        the stage the loan then rests in: SERVICING once paid, DISBURSEMENT while a task of
        the payout (a refusal, funds awaited) waits for a person."""
        self.decide("ops2", application_no, "disbursement", "approve", comment="申请放款")
        self.decide(
            "ops3",
            application_no,
            "disbursement_authorization",
            "authorize",
            comment="放款复核通过",
        )
        loan = self.payout_goes_on(application_no)
        if any(t["kind"] == "disbursement_manager_auth" for t in loan["open_tasks"]):
            self.decide(
                "manager",
                application_no,
                "disbursement_manager_auth",
                "authorize",
                comment="大额放款审批通过",
            )
            loan = self.payout_goes_on(application_no)
        return str(loan["stage"])

    def payout_goes_on(self, application_no: str) -> dict[str, Any]:
        """The loan once its payout went on after a decision: paid (out of DISBURSEMENT), or
        waiting for a person again (a task of the payout open)."""
        return self.wait_loan(
            application_no,
            "the payout goes on",
            lambda loan: loan["stage"] != "DISBURSEMENT" or bool(loan["open_tasks"]),
        )

    def sign_as_borrower(self, application_no: str, read_sms: SmsReader) -> str:
        """The borrower opens the link the SMS brought, asks for a code, reads it on the
        phone, confirms every disclosure and signs; returns the stage the update answers."""
        link = str(read_sms(application_no, "contract_signing_link")["url"])
        path = "/api/v1/sign/" + link.rsplit("/api/v1/sign/", 1)[1]
        info = self.expect(self.client.get(path), 200, "open the signing link")
        r = self.client.post(f"{path}/code")
        self.expect(r, 202, "ask for a signing code")
        code = str(read_sms(application_no, "signing_code")["code"])
        r = self.client.post(
            path,
            json={
                "code": code,
                "confirmed": [item["id"] for item in info["disclosures"]],
                "signer_name": DEMO_BORROWER["name"],
                "id_last4": DEMO_BORROWER["id_number"][-4:],
            },
        )
        return str(self.expect(r, 200, "sign the contract")["stage"])

    def loan(self, application_no: str, username: str = "manager") -> dict[str, Any]:
        r = self.client.get(f"/api/v1/loans/{application_no}", headers=self.login(username))
        result: dict[str, Any] = self.expect(r, 200, "read the loan")
        return result

    def wait_loan(
        self,
        application_no: str,
        what: str,
        ready: Callable[[dict[str, Any]], bool],
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Poll the loan until ``ready`` holds (e.g. the contract has been rendered). A 503
        (no worker answered the loan's query in time: a busy machine, or the loan between two
        runs) is retried until ``timeout``, as its Retry-After asks."""
        timeout = self.patience if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            r = self.client.get(f"/api/v1/loans/{application_no}", headers=self.login("manager"))
            if r.status_code == 503 and time.monotonic() < deadline:
                time.sleep(self.POLL)
                continue
            loan: dict[str, Any] = self.expect(r, 200, "read the loan")
            if ready(loan):
                return loan
            if time.monotonic() > deadline:
                raise DemoFailed(
                    f"{what}: not reached within {timeout:.0f} s (stage {loan['stage']}; "
                    f"waiting on {loan.get('pending_task') or loan.get('open_tasks')})"
                )
            time.sleep(self.POLL)


def run_demo(
    client: httpx.Client,
    *,
    password: str,
    say: Callable[[str], Any],
    read_sms: SmsReader,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    bank_url: str | None = None,
    pool_account: str = "9558800200100000005",
    patience: float = 60.0,
    timings: list[tuple[str, float]] | None = None,
) -> str:
    """Drive one loan to SETTLED; returns its application number. Raises DemoFailed otherwise.

    ``read_sms`` reads what the borrower's phone received (the signing link, the code);
    ``clock`` dates the payments (tests pass the time-skipping server's clock); with
    ``bank_url`` each repayment first arrives at the bank as a transfer from the borrower's
    card into the pool's account, under the reference operations then post it with (so the
    daily reconciliation finds both). ``patience``: how long the bots wait for a task or a
    stage (seconds); ``timings`` receives each decision call's (task kind, seconds)."""
    d = DemoDriver(client, password=password, say=say, patience=patience, timings=timings)
    r = client.post(
        "/api/v1/applications",
        json={
            "borrower": DEMO_BORROWER,
            "amount": "50000.00",
            "term_months": 6,
            "purpose": "店铺装修",
            "repayment_source": "经营收入",
        },
        headers=d.login("officer"),
    )
    application_no = str(d.expect(r, 201, "submit the application")["application_no"])
    say(f"application {application_no} submitted by officer (¥50,000.00, 6 months)")

    # The first assessment finds the papers missing: the specialist returns the application
    # naming them, the officer uploads them and resubmits, and the second round checks them.
    d.decide(
        "ops",
        application_no,
        "intake_review",
        "return",
        comment="请补充身份证正反面和收入证明",
        data={"items": list(DEMO_DOCUMENTS)},
    )
    for kind, (filename, content) in DEMO_DOCUMENTS.items():
        r = client.post(
            f"/api/v1/applications/{application_no}/documents",
            data={"kind": kind},
            files={"file": (filename, content)},
            headers=d.login("officer"),
        )
        d.expect(r, 201, f"upload {kind}")
    say(f"  officer uploaded {', '.join(DEMO_DOCUMENTS)}")
    d.decide("officer", application_no, "supplement_documents", "submit")
    d.decide("ops", application_no, "intake_review", "approve", comment="资料齐全")
    d.decide("risk", application_no, "risk_review", "approve", comment="信用良好")
    d.decide(
        "product",
        application_no,
        "product_matching",
        "approve",
        data=d.choose_product(application_no),
    )
    d.decide("officer", application_no, "offer_confirmation", "accept")

    loan = d.wait_loan(
        application_no,
        "the contract is ready to sign",
        lambda loan: (
            loan["stage"] == "CONTRACT_SIGNING"
            and bool(loan["signing"] and loan["signing"]["link_sent_at"])
        ),
    )
    say(
        f"  contract ready, APR {loan['terms']['apr']}; signing link sent to the borrower's "
        f"phone at {loan['signing']['link_sent_at']}"
    )
    pdf = client.get(f"/api/v1/loans/{application_no}/contract.pdf", headers=d.login("ops"))
    d.expect(pdf, 200, "download the contract")
    if not pdf.content.startswith(b"%PDF"):
        raise DemoFailed("the contract is not a PDF")
    stage = d.sign_as_borrower(application_no, read_sms)
    say(f"  contract signed by the borrower with a one-time code → {stage}")
    # The lender's authorized signatory countersigns: only then is the contract in force.
    d.decide("manager", application_no, "lender_seal", "seal", comment="同意用印")

    # Four eyes on the payout (ops approved the intake, so two others), then the bank.
    d.authorize_payout(application_no)

    loan = d.wait_loan(
        application_no,
        "the loan is disbursed and in servicing",
        lambda loan: loan["stage"] == "SERVICING",
    )
    for inst in loan["installments"]:
        amount = Decimal(inst["outstanding"])
        ref = f"demo-{application_no}-{inst['number']}-{uuid.uuid4().hex[:6]}"
        if bank_url:
            transfer = httpx.post(
                f"{bank_url.rstrip('/')}/v1/incoming",
                json={
                    "amount": str(amount),
                    "payer_account": DEMO_BORROWER["bank_card"],
                    "payer_name": DEMO_BORROWER["name"],
                    "payee_account": pool_account,
                    "reference": f"{application_no} 还款 第{inst['number']}期",
                },
                headers={"Idempotency-Key": ref},
                timeout=30,
            )
            d.expect(transfer, 201, f"the borrower's transfer for installment {inst['number']}")
        r = client.post(
            f"/api/v1/loans/{application_no}/payments",
            json={
                "amount": str(amount),
                "paid_at": clock().isoformat(),
                "external_ref": ref,
            },
            headers=d.login("ops"),
        )
        paid = d.expect(r, 201, f"pay installment {inst['number']}")
        say(f"  installment {inst['number']} paid early: ¥{amount} → {paid['stage']}")

    # The last fen is paid: operations checks the ledger and confirms the settlement.
    d.decide("ops", application_no, "settlement_confirmation", "confirm", comment="账务核对无误")
    loan = d.wait_loan(
        application_no, "the loan is settled", lambda loan: loan["stage"] == "SETTLED"
    )
    r = client.get(loan["settlement_certificate_url"], headers=d.login("ops"))
    d.expect(r, 200, "download the settlement certificate")
    if not r.content.startswith(b"%PDF"):
        raise DemoFailed("the settlement certificate is not a PDF")
    say(f"  settlement certificate issued (sha256 {r.headers['X-Content-SHA256'][:12]}…)")
    r = client.get(f"/api/v1/loans/{application_no}/archive", headers=d.login("ops"))
    archive = d.expect(r, 200, "read the archive manifest")
    say(f"  {archive['document_count']} documents archived, kept until {archive['retain_until']}")
    say(f"loan {application_no} SETTLED")
    return application_no
