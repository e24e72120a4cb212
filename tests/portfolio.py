"""A small portfolio written as rows (no workflow): loans in several DPD states on AS_OF, with
the figures the reports must give, computed by hand below.

| loan | stage | method | grade | class (latest) | DPD | outstanding | overdue p / i / fee / pen = amount |
|---|---|---|---|---|---|---|---|
| R1 | SERVICING | equal_installment | A (C then A) | normal | 0 | 2000.00 | — |
| R2 | SERVICING | equal_principal | B | — | 5 | 1000.00 | 500 / 20 / 0 / 1.25 = 521.25 |
| R3 | SERVICING | equal_installment | C | — | 30 | 1300.00 | 500 / 30 / 10 / 5 = 545.00 |
| R4 | SERVICING | equal_principal | D | substandard (after SM) | 91 | 4000.00 | 3000 / 150 / 0 / 37 = 3187.00 |
| R5 | SERVICING | equal_installment | — | doubtful (manual) | 200 | 3000.00 | 3000 / 100 / 0 / 90 = 3190.00 |
| R6 | SERVICING | equal_principal | B | — | 60 | 200.00 | 200 / 10 / 0 / 0 = 210.00 |
| R7 | SERVICING | equal_installment | E | — | 90 | 700.00 | 700 / 7 / 0 / 0 = 707.00 |
| R8 | SETTLED | | | | | 0 | |
| R9 | INTAKE_REVIEW (no loan) | | | | | | |
| R10 | WRITTEN_OFF | | | | | 1500.00 | |

R10's write-off (loan_write_offs): principal 1500.00, interest 80.00, penalty 300.00, fees 0, and
two recoveries since (120.00 + 80.00). The collections log (CONTACTS below) holds calls, visits,
promise checks and episode endings beside rows that are no contact (an SMS, a task opened).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from models.tables import (
    Application,
    Assessment,
    Borrower,
    BorrowerVersion,
    CollectionContact,
    Installment,
    Loan,
    LoanClassification,
    LoanWriteOff,
    Task,
    WriteOffRecovery,
)

AS_OF = date(2026, 6, 15)
D = Decimal


def no(n: int) -> str:
    return f"A20260101-R{n:04d}"


def _inst(
    number: int,
    due: date,
    principal: str,
    interest: str,
    *,
    p_paid: str = "0",
    i_paid: str = "0",
    fee: str = "0",
    pen: str = "0",
    pen_paid: str = "0",
    status: str | None = None,
) -> dict[str, Any]:
    return {
        "number": number,
        "due_date": due,
        "principal_due": D(principal).quantize(D("0.01")),
        "interest_due": D(interest).quantize(D("0.01")),
        "fee_due": D(fee).quantize(D("0.01")),
        "principal_paid": D(p_paid).quantize(D("0.01")),
        "interest_paid": D(i_paid).quantize(D("0.01")),
        "penalty_accrued": D(pen).quantize(D("0.01")),
        "penalty_paid": D(pen_paid).quantize(D("0.01")),
        "status": status,
    }


def _paid(number: int, due: date, principal: str, interest: str) -> dict[str, Any]:
    return _inst(number, due, principal, interest, p_paid=principal, i_paid=interest)


LOANS: dict[int, dict[str, Any]] = {
    1: {
        "stage": "SERVICING",
        "method": "equal_installment",
        "grades": ["C", "A"],
        "installments": [
            _paid(1, date(2026, 5, 10), "1000", "60"),
            _paid(2, date(2026, 6, 10), "1000", "55"),
            _inst(3, date(2026, 7, 10), "1000", "50"),
            _inst(4, date(2026, 8, 10), "1000", "40"),
        ],
    },
    2: {
        "stage": "SERVICING",
        "method": "equal_principal",
        "grades": ["B"],
        "installments": [
            _inst(1, date(2026, 6, 10), "500", "20", pen="1.25"),
            _inst(2, date(2026, 7, 10), "500", "10"),
        ],
    },
    3: {
        "stage": "SERVICING",
        "method": "equal_installment",
        "grades": ["C"],
        "installments": [
            _paid(1, date(2026, 4, 16), "800", "40"),
            _inst(2, date(2026, 5, 16), "800", "30", p_paid="300", fee="10", pen="6", pen_paid="1"),
            _inst(3, date(2026, 6, 16), "800", "20"),
        ],
    },
    4: {
        "stage": "SERVICING",
        "method": "equal_principal",
        "grades": ["D"],
        "installments": [
            _inst(1, date(2026, 3, 16), "1000", "60", pen="20"),
            _inst(2, date(2026, 4, 16), "1000", "50", pen="12"),
            _inst(3, date(2026, 5, 16), "1000", "40", pen="5"),
            _inst(4, date(2026, 6, 16), "1000", "30"),
        ],
    },
    5: {
        "stage": "SERVICING",
        "method": "equal_installment",
        "grades": [],
        "installments": [
            # A row a re-amortization dropped: it no longer counts.
            _inst(1, date(2025, 10, 27), "999", "9", status="cancelled"),
            _inst(2, date(2025, 11, 27), "3000", "100", pen="90"),
        ],
    },
    6: {
        "stage": "SERVICING",
        "method": "equal_principal",
        "grades": ["B"],
        "installments": [_inst(1, date(2026, 4, 16), "200", "10")],
    },
    7: {
        "stage": "SERVICING",
        "method": "equal_installment",
        "grades": ["E"],
        "installments": [_inst(1, date(2026, 3, 17), "700", "7")],
    },
    8: {
        "stage": "SETTLED",
        "method": "equal_installment",
        "grades": ["A"],
        "installments": [_paid(1, date(2026, 5, 1), "500", "5")],
    },
    9: {"stage": "INTAKE_REVIEW", "method": None, "grades": ["B"], "installments": []},
    10: {
        "stage": "WRITTEN_OFF",
        "method": "equal_installment",
        "grades": ["E"],
        "installments": [_inst(1, date(2025, 1, 10), "1500", "80", pen="300")],
    },
}

NAMES = {n: "张三丰" for n in LOANS} | {2: "李四"}  # R2 reads its borrower version


def build_portfolio(engine: Engine) -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    with Session(engine) as s:
        borrower = Borrower(
            name="张三丰",
            id_number="11010519491231002X",
            phone="13800138000",
            bank_card="6222020200112233446",
            monthly_income=D("20000.00"),
        )
        s.add(borrower)
        s.flush()
        s.add(
            BorrowerVersion(
                borrower_id=borrower.id,
                version=1,
                name="李四",
                phone="13800138001",
                bank_card="6222020200112233446",
                monthly_income=D("20000.00"),
                recorded_at=now,
                recorded_by="officer",
                reason="test",
            )
        )
        s.flush()
        for n, spec in LOANS.items():
            s.add(
                Application(
                    application_no=no(n),
                    borrower_id=borrower.id,
                    borrower_version=1 if n == 2 else None,
                    amount=D("5000.00"),
                    term_months=6,
                    purpose="店铺装修",
                    repayment_source="经营收入",
                    stage=spec["stage"],
                    submitted_by="officer",
                )
            )
            for seq, grade in enumerate(spec["grades"], 1):
                s.add(
                    Assessment(
                        application_no=no(n),
                        seq=seq,
                        bureau_status="found",
                        checks=[],
                        score={"score": 600},
                        scorecard_version=1,
                        grade=grade,
                        recommendation="approve",
                        created_at=now,
                    )
                )
            if spec["method"] and spec["installments"]:
                s.add(
                    Loan(
                        application_no=no(n),
                        contract_no=f"C-{n}",
                        principal=D("5000.00"),
                        annual_rate=D("0.108"),
                        term_months=6,
                        method=spec["method"],
                        apr=D("0.108"),
                        apr_compound=D("0.113"),
                        start_date=date(2026, 1, 10),
                        status="active",
                    )
                )
            for row in spec["installments"]:
                fields = dict(row)
                status = fields.pop("status")
                owed = (
                    fields["principal_due"]
                    - fields["principal_paid"]
                    + fields["interest_due"]
                    - fields["interest_paid"]
                    + fields["fee_due"]
                    + fields["penalty_accrued"]
                    - fields["penalty_paid"]
                )
                s.add(
                    Installment(
                        application_no=no(n),
                        status=status
                        or (
                            "paid"
                            if owed == 0
                            else "overdue"
                            if row["due_date"] < AS_OF
                            else "scheduled"
                        ),
                        **fields,
                    )
                )
        for n, seq, category, source in (
            (1, 1, "normal", "auto"),
            (4, 1, "special_mention", "auto"),
            (4, 2, "substandard", "auto"),
            (5, 1, "doubtful", "manual"),
        ):
            s.add(
                LoanClassification(
                    application_no=no(n),
                    seq=seq,
                    category=category,
                    reason="test",
                    source=source,
                    days_past_due=0,
                    as_of=date(2026, 6, 1),
                    recorded_by="risk" if source == "manual" else "system",
                    recorded_at=now,
                )
            )
        # R4's collection calls: the latest decided one is the last contact; R5's is open.
        for n, status, decision, closed in (
            (4, "completed", "unreachable", datetime(2026, 5, 1, 3, tzinfo=UTC)),
            (4, "completed", "promise_to_pay", datetime(2026, 6, 1, 3, tzinfo=UTC)),
            (5, "open", None, None),
        ):
            s.add(
                Task(
                    id=uuid.uuid4(),
                    application_no=no(n),
                    kind="overdue_call",
                    candidate_role="customer_service",
                    status=status,
                    decision=decision,
                    due_at=now,
                    created_at=now,
                    closed_at=closed,
                )
            )
        for i, (n, step, channel, outcome, at) in enumerate(CONTACTS):
            s.add(
                CollectionContact(
                    key=f"collections-{no(n)}-1/{i}",
                    application_no=no(n),
                    episode=1,
                    workflow_id=f"collections-{no(n)}-1",
                    step=step,
                    channel=channel,
                    outcome=outcome,
                    rule="test",
                    days_past_due=0,
                    actor="cs",
                    occurred_at=at,
                )
            )
        s.add(
            LoanWriteOff(
                application_no=no(10),
                written_off_on=date(2025, 5, 1),
                principal=D("1500.00"),
                interest=D("80.00"),
                penalty=D("300.00"),
                fees=D("0.00"),
                recovered=D("200.00"),
                proposed_by="risk",
                approved_by="manager",
                episode=1,
                written_off_at=datetime(2025, 5, 1, 2, tzinfo=UTC),
            )
        )
        for ref, amount, total in (("RC-1", "120.00", "120.00"), ("RC-2", "80.00", "200.00")):
            s.add(
                WriteOffRecovery(
                    external_ref=ref,
                    application_no=no(10),
                    amount=D(amount),
                    recovered_total=D(total),
                    received_at=now,
                )
            )
        s.commit()


def _at(month: int, day: int, hour: int, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


# The collections log: (loan, step, channel, outcome, when).
CONTACTS = [
    (2, "reminder_call", "task", "opened", _at(6, 8, 16)),  # not a contact
    (2, "sms_notice", "sms", "queued", _at(6, 11, 1)),  # not a contact
    (2, "reminder_call", "phone", "unreachable", _at(6, 12, 2)),
    (2, "reminder_call", "phone", "promise_to_pay", _at(6, 13, 3)),
    (3, "collection_call", "phone", "dispute", _at(6, 14, 2)),
    (4, "collection_call", "phone", "unreachable", _at(5, 20, 2)),
    (4, "collection_call", "phone", "promise_to_pay", _at(5, 21, 2)),
    (4, "collection_call", "promise", "promise_broken", _at(5, 29, 16)),
    (6, "reminder_call", "phone", "promise_to_pay", _at(4, 25, 2)),
    (6, "reminder_call", "promise", "promise_kept", _at(5, 1, 16)),
    (7, "field_visit", "visit", "wrong_number", _at(5, 30, 3)),
    (8, "reminder_call", "phone", "reached", _at(4, 10, 2)),
    (8, "episode", "system", "cured", _at(4, 12, 16)),
    (10, "write_off_proposal", "write_off", "propose", _at(4, 30, 2, 2025)),
    (10, "episode", "system", "written_off", _at(5, 1, 2, 2025)),
]


# ---- the figures, by hand ---------------------------------------------------------------

DPD = {1: 0, 2: 5, 3: 30, 4: 91, 5: 200, 6: 60, 7: 90}
OUTSTANDING = {
    1: "2000.00",
    2: "1000.00",
    3: "1300.00",
    4: "4000.00",
    5: "3000.00",
    6: "200.00",
    7: "700.00",
}
# (principal, interest, fee, penalty, amount)
OVERDUE = {
    2: ("500.00", "20.00", "0.00", "1.25", "521.25"),
    3: ("500.00", "30.00", "10.00", "5.00", "545.00"),
    4: ("3000.00", "150.00", "0.00", "37.00", "3187.00"),
    5: ("3000.00", "100.00", "0.00", "90.00", "3190.00"),
    6: ("200.00", "10.00", "0.00", "0.00", "210.00"),
    7: ("700.00", "7.00", "0.00", "0.00", "707.00"),
}
TOTAL = "12200.00"  # 2000 + 1000 + 1300 + 4000 + 3000 + 200 + 700
OVERDUE_PRINCIPAL = "7900.00"  # 500 + 500 + 3000 + 3000 + 200 + 700
DPD_BUCKETS = {
    "current": (1, "2000.00"),  # R1
    "1-30": (2, "2300.00"),  # R2, R3
    "31-60": (1, "200.00"),  # R6
    "61-90": (1, "700.00"),  # R7
    "91-180": (1, "4000.00"),  # R4
    "180+": (1, "3000.00"),  # R5
}
PAR = {
    # 10200 / 12200 = 0.8360655…; 9200 / 12200 = 0.7540983…; 7700 / 12200 = 0.6311475…
    "par1": (6, "10200.00", "0.836066"),
    "par30": (5, "9200.00", "0.754098"),
    "par90": (3, "7700.00", "0.631148"),
}
BY_PRODUCT = {
    "equal_installment": (4, "7000.00"),  # R1, R3, R5, R7
    "equal_principal": (3, "5200.00"),  # R2, R4, R6
}
BY_GRADE = {
    "A": (1, "2000.00"),
    "B": (2, "1200.00"),
    "C": (1, "1300.00"),
    "D": (1, "4000.00"),
    "E": (1, "700.00"),
    "ungraded": (1, "3000.00"),
}
BY_CLASS = {
    "normal": (1, "2000.00"),
    "special_mention": (0, "0.00"),
    "substandard": (1, "4000.00"),
    "doubtful": (1, "3000.00"),
    "loss": (0, "0.00"),
    "unclassified": (4, "3200.00"),  # R2, R3, R6, R7
}
BY_STAGE_NONZERO = {
    "SERVICING": (7, TOTAL),
    "SETTLED": (1, "0.00"),
    "INTAKE_REVIEW": (1, "0.00"),
    "WRITTEN_OFF": (1, "1500.00"),
}
WRITE_OFFS = {
    "loan_count": 1,
    "amount": "1500.00",
    "interest": "80.00",
    "penalty": "300.00",
    "fees": "0.00",
}
RECOVERIES = {"loan_count": 1, "amount": "200.00"}  # 120 + 80, one loan
COLLECTIONS = {
    # calls and visits: R8; R2, R4; R2, R4, R6; R3; R7
    "contacts": {
        "reached": 1,
        "unreachable": 2,
        "promise_to_pay": 3,
        "dispute": 1,
        "wrong_number": 1,
    },
    "promises_made": 3,
    "promises_kept": 1,  # R6
    "promises_broken": 1,  # R4
    "promise_kept_rate": "0.500000",  # 1 / (1 + 1)
    "episodes": {"cured": 1, "written_off": 1},  # R8, R10
}
# The last contact on the worklist: the later of the ladder's log and the old overdue calls.
LAST_CONTACT = {
    2: ("2026-06-13T03:00:00", "promise_to_pay"),  # the later of its two calls
    3: ("2026-06-14T02:00:00", "dispute"),
    4: ("2026-06-01T03:00:00", "promise_to_pay"),  # the overdue call task, later than the log
    5: None,  # an open task is no contact
    6: ("2026-04-25T02:00:00", "promise_to_pay"),  # the promise's check is no contact
    7: ("2026-05-30T03:00:00", "wrong_number"),
}
