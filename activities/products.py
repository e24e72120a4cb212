"""Product matching: the application's facts (grade, borrowing room under the caps, age,
documents) matched against the catalog in force on the offer date (``domain.products``).

No personal data crosses into the workflow: an age, not a birth date; document kinds, not
documents. The proposals of each round are audited once.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.assessment import _outstanding_here
from domain.disclosure import CeilingPolicy
from domain.identifiers import BUSINESS_REFUSAL
from domain.identity import age_on, check_resident_id
from domain.intake import IntakeRules
from domain.products import MatchFacts, Proposals, propose
from loanops.db import session_scope
from loanops.policy import lpr_table
from loanops.products import catalog_in_force
from models.audit import append_audit
from models.shapes import ProposeInput
from models.tables import Application, Assessment, Document, borrower_data_of


class ProductActivities:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @activity.defn
    def propose(self, inp: ProposeInput) -> Proposals:
        """The eligible product versions with proposed terms, and the excluded ones with why."""
        with Session(self.engine) as s:
            facts = _facts(s, inp)
        lpr = lpr_table(self.engine).in_force(inp.offered_on)
        result = propose(
            catalog_in_force(self.engine, inp.offered_on),
            facts,
            on=inp.offered_on,
            lpr=lpr,
            ceiling=CeilingPolicy(
                lpr_multiple=inp.lpr_multiple, absolute_cap=inp.absolute_rate_cap
            ),
        )
        with session_scope(self.engine) as s:
            append_audit(
                s,
                key=f"{inp.application_no}/products/{inp.round}",
                application_no=inp.application_no,
                actor="system",
                action="products.proposed",
                occurred_at=inp.at,
                detail={
                    "round": inp.round,
                    "grade": facts.grade,
                    "proposed": [f"{p.code} v{p.version}" for p in result.proposals],
                    "excluded": {
                        f"{e.code} v{e.version}": list(e.reasons) for e in result.excluded
                    },
                },
            )
        return result


def _facts(s: Session, inp: ProposeInput) -> MatchFacts:
    app = s.exec(select(Application).where(Application.application_no == inp.application_no)).one()
    borrower = borrower_data_of(s, app)
    if borrower is None:
        raise ApplicationError("the application has no borrower", type=BUSINESS_REFUSAL)
    newest = s.exec(
        select(Assessment)
        .where(Assessment.application_no == inp.application_no)
        .order_by(col(Assessment.seq).desc())
    ).first()
    grade = inp.grade or (newest.grade if newest else None)
    rules = IntakeRules()
    here = _outstanding_here(s, app)
    room = rules.platform_cap - here
    if newest is not None and newest.bureau:
        elsewhere = sum(
            (Decimal(str(o.get("balance", "0"))) for o in newest.bureau.get("open_loans", [])),
            Decimal("0.00"),
        )
        room = min(room, rules.total_cap - here - elsewhere)
    try:
        birth = check_resident_id(borrower.id_number, today=inp.offered_on).birth_date
        age: int | None = age_on(birth, inp.offered_on)
    except ValueError:
        age = None
    kinds = s.exec(select(Document.kind).where(Document.application_no == app.application_no))
    return MatchFacts(
        requested_amount=inp.requested_amount,
        requested_term=inp.requested_term_months,
        grade=grade,
        caps_room=max(room, Decimal("0.00")),
        age=age,
        document_kinds=tuple(sorted(set(kinds.all()))),
        manager_approved=inp.manager_approved,
    )
