"""Refund activities (settlement-refund-v1): the refund row of a loan settled with credit, its
steps (audited), the bank order under the refund's key (status asked before any re-send, like a
payout's) and the record of a refund the bank executed, with the borrower's SMS.

Personal data (the payee's account and name) stays in the database: the workflow sees the
masked account, the key, the amount and the outcome only.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.payout import OUTCOME_UNKNOWN, PayoutActivities
from activities.records import append_audit, enqueue_notice
from adapters.bank import (
    BankGateway,
    BankOutcomeUnknown,
    BankRejected,
    BankRequestRefused,
    PaymentOrder,
)
from domain.funding import POOL_CODE
from domain.identifiers import BUSINESS_REFUSAL
from domain.masking import mask_bank_card
from domain.money import format_money
from domain.notices import BORROWER_RECIPIENT, Channel
from domain.payout import OrderState
from domain.refund import RefundStatus
from loanops.db import session_scope
from models import funding
from models.shapes import (
    OpenRefundInput,
    OrderInput,
    OrderOutcome,
    RecordRefundInput,
    RefundPayee,
    RefundStepInput,
)
from models.tables import (
    Application,
    FundingPool,
    Loan,
    Refund,
    borrower_data_of,
    contract_of,
)


class RefundActivities:
    def __init__(
        self,
        engine: Engine,
        bank: BankGateway,
        *,
        payer_account: str,
        callback_url: Callable[[], str | None],
    ) -> None:
        self.engine = engine
        self.bank = bank
        self.payer_account = payer_account
        self.callback_url = callback_url

    @activity.defn
    def open_refund(self, inp: OpenRefundInput) -> RefundPayee:
        """The refund row (once per loan): the amount, and the payee the signed contract names
        (the card on the application for contracts issued before payout-v1)."""
        with session_scope(self.engine) as s:
            loan = s.exec(select(Loan).where(Loan.application_no == inp.application_no)).one()
            row = s.get(Refund, inp.application_no)
            if row is None:
                app = s.exec(
                    select(Application).where(Application.application_no == inp.application_no)
                ).one()
                borrower = borrower_data_of(s, app)
                contract = contract_of(s, inp.application_no)
                payee = contract.payee_account if contract is not None else None
                if payee is None and borrower is not None:
                    payee = borrower.bank_card
                row = Refund(
                    application_no=inp.application_no,
                    status=RefundStatus.AWAITING_MAKER.value,
                    amount=inp.amount,
                    payee_account=payee,
                    payee_name=borrower.name if borrower is not None else None,
                    created_at=inp.at,
                    updated_at=inp.at,
                )
                s.add(row)
                append_audit(
                    s,
                    key=f"{inp.application_no}/refund/opened",
                    application_no=inp.application_no,
                    actor="system",
                    action="refund.opened",
                    occurred_at=inp.at,
                    detail={"amount": format_money(inp.amount)},
                )
            account = mask_bank_card(row.payee_account) if row.payee_account else None
            return RefundPayee(account=account, contract_no=loan.contract_no or "")

    @activity.defn
    def refund_step(self, inp: RefundStepInput) -> None:
        """The refund moved on (requested, authorized and sent, failed, held, closed)."""
        with session_scope(self.engine) as s:
            row = s.get(Refund, inp.application_no)
            if row is None:
                raise RuntimeError(f"loan {inp.application_no} has no refund row")
            if row.status == RefundStatus.PAID.value:
                return  # the bank paid it: nothing moves a paid refund
            row.status = inp.status
            if inp.status == RefundStatus.AWAITING_CHECKER.value:
                row.made_by = inp.by
            elif inp.status == RefundStatus.SENT.value:
                row.checked_by = inp.by
            if inp.order_key is not None:
                row.order_key = inp.order_key
            row.reason = inp.reason[:500] if inp.reason else None
            row.updated_at = inp.at
            append_audit(
                s,
                key=f"{inp.application_no}/refund/{inp.status}/{inp.at.isoformat()}",
                application_no=inp.application_no,
                actor=inp.by,
                action=f"refund.{inp.status}",
                occurred_at=inp.at,
                detail={
                    "amount": format_money(row.amount),
                    "order_key": row.order_key,
                    "reason": inp.reason,
                },
            )

    @activity.defn
    def send_refund_order(self, inp: OrderInput) -> OrderOutcome:
        """Send the refund order under its key. A retry asks the bank for the key's order first
        and follows it if the bank has it (never two orders for one key)."""
        with Session(self.engine, expire_on_commit=False) as s:
            row = s.get(Refund, inp.application_no)
            loan = s.exec(select(Loan).where(Loan.application_no == inp.application_no)).one()
        if row is None or row.status != RefundStatus.SENT.value or row.order_key != inp.order_key:
            raise ApplicationError(
                "the refund cannot be sent",
                f"refund {inp.order_key} is {row.status if row else 'missing'}, not authorized",
                type=BUSINESS_REFUSAL,
                non_retryable=True,
            )
        if not row.payee_account or not row.payee_name:
            raise ApplicationError(
                "the refund cannot be sent",
                "no payee account on record (the contract names none)",
                type=BUSINESS_REFUSAL,
                non_retryable=True,
            )
        if activity.info().attempt > 1:
            known = self.bank.status(inp.order_key)  # BankUnavailable: retried
            if known is not None:
                return PayoutActivities._outcome(known)
        order = PaymentOrder(
            idempotency_key=inp.order_key,
            amount=row.amount,
            payee_account=row.payee_account,
            payee_name=row.payee_name,
            payer_account=self.payer_account,
            reference=f"{loan.contract_no} 退款",
            callback_url=self.callback_url(),
        )
        try:
            return PayoutActivities._outcome(self.bank.pay(order))
        except BankRejected as exc:
            return OrderOutcome(
                OrderState.REJECTED.value,
                inp.order_key,
                exc.status.order_id if exc.status else None,
                reason_code=exc.reason_code,
                reason=exc.reason or exc.reason_code,
            )
        except BankOutcomeUnknown as exc:
            raise ApplicationError(str(exc), type=OUTCOME_UNKNOWN) from exc
        except BankRequestRefused as exc:
            raise ApplicationError(
                "the bank refused the refund order",
                str(exc),
                type=BUSINESS_REFUSAL,
                non_retryable=True,
            ) from exc

    @activity.defn
    def record_refund(self, inp: RecordRefundInput) -> None:
        """The bank executed the refund: record it (the loan's credit is then nil), take it out
        of the funding pool (once per order key; a database with no pool records none) and tell
        the borrower by SMS (a transaction confirmation: sent at once)."""
        with Session(self.engine, expire_on_commit=False) as s:
            if s.get(FundingPool, POOL_CODE) is not None:
                funding.record_refund_outflow(
                    s,
                    key=inp.order_key,
                    amount=inp.amount,
                    actor=inp.checked_by,
                    at=inp.at,
                    application_no=inp.application_no,
                )
        with session_scope(self.engine) as s:
            row = s.get(Refund, inp.application_no)
            if row is None:
                raise RuntimeError(f"loan {inp.application_no} has no refund row")
            loan = s.exec(select(Loan).where(Loan.application_no == inp.application_no)).one()
            if row.status == RefundStatus.PAID.value:
                return
            row.status = RefundStatus.PAID.value
            row.order_key = inp.order_key
            row.bank_order_id = inp.bank_order_id
            row.value_date = inp.value_date
            row.made_by = inp.made_by
            row.checked_by = inp.checked_by
            row.reason = None
            row.updated_at = inp.at
            loan.credit = loan.credit - inp.amount
            append_audit(
                s,
                key=f"{inp.application_no}/refund/paid",
                application_no=inp.application_no,
                actor=inp.checked_by,
                action="refund.paid",
                occurred_at=inp.at,
                detail={
                    "amount": format_money(inp.amount),
                    "order_key": inp.order_key,
                    "bank_order_id": inp.bank_order_id,
                    "value_date": inp.value_date.isoformat() if inp.value_date else None,
                    "made_by": inp.made_by,
                    "checked_by": inp.checked_by,
                },
            )
            enqueue_notice(
                s,
                key=f"{inp.application_no}/refund/paid/borrower",
                application_no=inp.application_no,
                channel=Channel.SMS.value,
                recipient=BORROWER_RECIPIENT,
                template="refund_paid",
                payload={
                    "amount": format_money(inp.amount),
                    "card": mask_bank_card(row.payee_account or ""),
                    "value_date": (inp.value_date or inp.at.date()).isoformat(),
                    "contract_no": loan.contract_no or "",
                },
                created_at=inp.at,
            )
