"""Payout activities (payout-v1): the pre-check list against the signed contract with the funding
reservation, the bank order (sent under the attempt's key, status asked before any re-send),
its status, the release of a payout that will not happen, and the record of one that did.

Every activity is idempotent by the order key (``domain.payout.order_key``): the bank executes
one order per key, the pool reserves and consumes once per key, the disbursement row is unique
per loan. A worker killed between the bank's execution and the activity's completion retries
the activity; the retry asks the bank for the key's order first and finds it executed.

Personal data (the payee's account and name) stays in the database: the workflow sees the key,
the amount and the outcome only.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from decimal import Decimal

from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.assessment import _outstanding_here
from activities.records import append_audit, enqueue_notice
from adapters.bank import (
    BankGateway,
    BankOutcomeUnknown,
    BankRejected,
    BankRequestRefused,
    BankUnavailable,
    PaymentOrder,
    PaymentStatus,
)
from domain.funding import FundingError, InsufficientFunds
from domain.identifiers import BUSINESS_REFUSAL
from domain.identity import check_resident_id
from domain.masking import mask_bank_card
from domain.money import format_money
from domain.notices import BORROWER_RECIPIENT, Channel
from domain.payout import Check, CheckItem, OrderState, PrecheckResult, order_key
from loanops.db import session_scope
from loanops.scorecards import scorecard_in_force
from models import funding
from models.shapes import (
    FundsInput,
    OrderInput,
    OrderOutcome,
    PrecheckInput,
    RecordPayoutInput,
    ReleasePayoutInput,
)
from models.tables import (
    Application,
    ContractSignature,
    Disbursement,
    Document,
    Loan,
    Payout,
    blacklisted,
    borrower_data_of,
    contract_of,
)

# The bank's outcome is unknown (a timeout after sending): retried, and the retry asks first.
OUTCOME_UNKNOWN = "BankOutcomeUnknown"
POLL_INTERVAL_SECONDS = 0.25


def _sha(data: bytes | None) -> str | None:
    return hashlib.sha256(data).hexdigest() if data is not None else None


class PayoutActivities:
    def __init__(
        self,
        engine: Engine,
        bank: BankGateway,
        *,
        payer_account: str,
        callback_url: Callable[[], str | None],
    ) -> None:
        """``callback_url`` is read at each send (the API's public address may be known only
        once it listens)."""
        self.engine = engine
        self.bank = bank
        self.payer_account = payer_account
        self.callback_url = callback_url

    # ---- the pre-check list ------------------------------------------------------------------

    @activity.defn
    def precheck_payout(self, inp: PrecheckInput) -> PrecheckResult:
        """Check the payout against the signed contract, the accepted offer and the borrower as
        they are now; when everything else holds, reserve the money (the last item). The list
        is stored with the payout attempt and audited, whatever its outcome."""
        key = order_key(inp.application_no, inp.attempt)
        amount = inp.terms.payout
        items, payee, payee_name = self._check(inp, key)
        if all(i.ok for i in items):
            items.append(self._reserve(inp, key, amount))
        else:
            items.append(CheckItem(Check.FUNDS_RESERVED, False, "其他检查未通过，未预留资金"))
        result = PrecheckResult(items=tuple(items), amount=amount, order_key=key)
        with session_scope(self.engine) as s:
            row = s.get(Payout, key)
            checklist = [{"name": i.name.value, "ok": i.ok, "detail": i.detail} for i in items]
            status = (
                "prechecked"
                if result.ok
                else ("awaiting_funds" if result.only_funds_missing else "refused")
            )
            if row is None:
                s.add(
                    Payout(
                        order_key=key,
                        application_no=inp.application_no,
                        attempt=inp.attempt,
                        status=status,
                        amount=amount,
                        payee_account=payee or "",
                        payee_name=payee_name or "",
                        checklist=checklist,
                        requested_by=inp.requested_by,
                        authorized_by=list(inp.authorized_by),
                        created_at=inp.at,
                        updated_at=inp.at,
                    )
                )
            elif row.status in ("prechecked", "awaiting_funds", "refused"):
                row.status = status
                row.checklist = checklist
                row.payee_account = payee or row.payee_account
                row.payee_name = payee_name or row.payee_name
                row.updated_at = inp.at
            append_audit(
                s,
                key=f"payout/{key}/precheck/{inp.at.isoformat()}",
                application_no=inp.application_no,
                actor="system",
                action="payout.prechecked",
                occurred_at=inp.at,
                detail={"order_key": key, "ok": result.ok, "items": checklist},
            )
        return result

    def _check(
        self, inp: PrecheckInput, key: str
    ) -> tuple[list[CheckItem], str | None, str | None]:
        items: list[CheckItem] = []
        with Session(self.engine, expire_on_commit=False) as s:
            app = s.exec(
                select(Application).where(Application.application_no == inp.application_no)
            ).one()
            loan = s.exec(select(Loan).where(Loan.application_no == inp.application_no)).one()
            borrower = borrower_data_of(s, app)
            contract = contract_of(s, inp.application_no)
            signature = s.get(ContractSignature, contract.id) if contract else None
            signed_copy = (
                s.get(Document, signature.signed_document_id)
                if signature is not None and signature.signed_document_id is not None
                else None
            )
            # 1. Signed by the borrower: the contract in force is the one the workflow issued.
            is_ours = contract is not None and str(contract.id) == inp.contract.document_id
            items.append(
                CheckItem(
                    Check.CONTRACT_SIGNED,
                    is_ours and contract is not None and contract.signed_at is not None,
                    f"合同 {inp.contract.contract_no} 于 {contract.signed_at:%Y-%m-%d %H:%M} 签署"
                    if is_ours and contract is not None and contract.signed_at is not None
                    else "合同在用版本未经借款人签署",
                )
            )
            # 2. Sealed by the lender.
            sealed = signature is not None and signature.sealed_at is not None
            items.append(
                CheckItem(
                    Check.LENDER_SEALED,
                    sealed,
                    f"由 {signature.sealed_by} 盖章"
                    if sealed and signature is not None
                    else "合同没有贷款人盖章记录",
                )
            )
            # 3. The stored PDFs are the bytes that were signed.
            stored = _sha(contract.content) if contract is not None else None
            unaltered = (
                contract is not None
                and stored == contract.signed_sha256 == inp.contract.sha256
                and (signed_copy is None or _sha(signed_copy.content) == signed_copy.sha256)
            )
            items.append(
                CheckItem(
                    Check.CONTRACT_UNALTERED,
                    unaltered,
                    f"SHA-256 {stored[:12]}… 与签署时一致"
                    if unaltered and stored
                    else "存储的合同文件与签署时的 SHA-256 不一致（文件被改动）",
                )
            )
            # 4. Amount, term, rate, method and fees: the offer the borrower accepted.
            t = inp.terms
            differences = [
                name
                for name, ours, offered in (
                    ("amount", loan.principal, t.principal),
                    ("term_months", loan.term_months, t.term_months),
                    ("annual_rate", loan.annual_rate, t.annual_rate),
                    ("method", loan.method, t.method.value),
                    ("upfront_fee", loan.upfront_fee, t.upfront_fee),
                    ("monthly_fee", loan.monthly_fee, t.monthly_fee),
                )
                if ours != offered
            ]
            items.append(
                CheckItem(
                    Check.TERMS_MATCH_OFFER,
                    not differences,
                    f"金额 {format_money(t.principal)}、{t.term_months} 期、年利率 {t.annual_rate}"
                    if not differences
                    else "与已接受的报价不一致：" + "、".join(differences),
                )
            )
            # 5. The payee: the account the signed contract names, never a card recorded later.
            payee = contract.payee_account if contract is not None else None
            if payee is None and borrower is not None:  # contracts issued before payout-v1
                payee = borrower.bank_card
            items.append(self._payee_item(s, app, payee))
            name = borrower.name if borrower is not None else None
            # 7./8. Identity still valid, not blacklisted since approval.
            id_ok, id_detail = False, "没有借款人信息"
            if borrower is not None:
                try:
                    check_resident_id(borrower.id_number, today=inp.business_date)
                    id_ok, id_detail = True, "身份证号校验通过"
                except ValueError as exc:
                    id_detail = f"身份证号无效：{exc}"
            listed = borrower is not None and blacklisted(s, borrower.id_number) is not None
            # 9. Borrowing caps, counting loans disbursed since the approval.
            rules = scorecard_in_force(s, inp.business_date).intake
            here = _outstanding_here(s, app) + t.principal
            # 10. No other disbursement for this loan.
            paid = s.exec(
                select(Disbursement).where(Disbursement.application_no == inp.application_no)
            ).first()
            in_flight = s.exec(
                select(Payout).where(
                    Payout.application_no == inp.application_no,
                    Payout.order_key != key,
                    col(Payout.status).in_(("sent", "executed")),
                )
            ).first()
        verified = self._verify(payee, name)
        items.append(verified)
        items.append(CheckItem(Check.IDENTITY_VALID, id_ok, id_detail))
        items.append(
            CheckItem(
                Check.NOT_BLACKLISTED,
                borrower is not None and not listed,
                "借款人在黑名单上" if listed else "不在黑名单上",
            )
        )
        items.append(
            CheckItem(
                Check.CAPS_HOLD,
                here <= rules.platform_cap,
                f"本平台未还本金（含本笔）{format_money(here)}，上限 {format_money(rules.platform_cap)}",
            )
        )
        items.append(
            CheckItem(
                Check.NO_OTHER_DISBURSEMENT,
                paid is None and in_flight is None,
                "没有其他放款"
                if paid is None and in_flight is None
                else f"本笔贷款已有放款（{paid.idempotency_key if paid else in_flight.order_key if in_flight else ''}）",
            )
        )
        return items, payee, name

    @staticmethod
    def _payee_item(s: Session, app: Application, payee: str | None) -> CheckItem:
        if payee is None:
            return CheckItem(Check.PAYEE_IS_CONTRACT_ACCOUNT, False, "合同没有载明收款账户")
        detail = f"付至合同载明的账户 {mask_bank_card(payee)}"
        newest = borrower_data_of(s, app)
        if newest is not None and newest.bank_card != payee:
            detail += f"（申请登记的卡 {mask_bank_card(newest.bank_card)} 与合同不同，不予使用）"
        return CheckItem(Check.PAYEE_IS_CONTRACT_ACCOUNT, True, detail)

    def _verify(self, payee: str | None, name: str | None) -> CheckItem:
        if payee is None or name is None:
            return CheckItem(Check.ACCOUNT_VERIFIED, False, "没有可核验的账户")
        try:
            check = self.bank.verify_account(payee, name)
        except (BankUnavailable, BankRequestRefused) as exc:
            return CheckItem(Check.ACCOUNT_VERIFIED, False, f"银行暂时无法核验账户：{exc}")
        if check.result == "belongs" and check.status in (None, "active"):
            return CheckItem(Check.ACCOUNT_VERIFIED, True, "银行确认账户属于借款人且状态正常")
        if check.result == "belongs":
            return CheckItem(Check.ACCOUNT_VERIFIED, False, f"账户状态异常：{check.status}")
        if check.result == "name_mismatch":
            return CheckItem(Check.ACCOUNT_VERIFIED, False, "账户户名与借款人姓名不符")
        return CheckItem(Check.ACCOUNT_VERIFIED, False, "银行查无此账户")

    def _reserve(self, inp: PrecheckInput, key: str, amount: Decimal) -> CheckItem:
        with Session(self.engine, expire_on_commit=False) as s:
            try:
                row = funding.reserve(
                    s,
                    key=key,
                    application_no=inp.application_no,
                    amount=amount,
                    actor=inp.authorized_by[-1] if inp.authorized_by else inp.requested_by,
                    at=inp.at,
                )
            except InsufficientFunds as exc:
                return CheckItem(Check.FUNDS_RESERVED, False, f"资金池可用资金不足：{exc}")
            except FundingError as exc:
                return CheckItem(Check.FUNDS_RESERVED, False, f"资金池无法预留：{exc}")
        if row.status != "reserved":
            return CheckItem(
                Check.FUNDS_RESERVED, False, f"预留 {key} 已{row.status}，需要新的放款尝试"
            )
        return CheckItem(Check.FUNDS_RESERVED, True, f"已预留 {format_money(amount)}（{key}）")

    @activity.defn
    def funds_available(self, inp: FundsInput) -> bool:
        """A payout waiting for funds: reserve its money now if the pool can cover it."""
        with Session(self.engine, expire_on_commit=False) as s:
            try:
                row = funding.reserve(
                    s,
                    key=inp.order_key,
                    application_no=inp.application_no,
                    amount=inp.amount,
                    actor="system",
                    at=inp.at,
                )
            except FundingError:
                return False
        return row.status == "reserved"

    # ---- the bank ------------------------------------------------------------------------------

    @activity.defn
    def send_payment_order(self, inp: OrderInput) -> OrderOutcome:
        """Send the order under its key. A retry (after a timeout, a 5xx or a crash) asks the
        bank for the key's order first and follows it if the bank has it."""
        with session_scope(self.engine) as s:
            payout = s.get(Payout, inp.order_key)
            if payout is None or payout.status not in ("prechecked", "sent", "executed"):
                raise ApplicationError(
                    "the payout cannot be sent",
                    f"payout {inp.order_key} is "
                    + (payout.status if payout else "missing")
                    + ", not prechecked",
                    type=BUSINESS_REFUSAL,
                    non_retryable=True,
                )
            loan = s.exec(select(Loan).where(Loan.application_no == inp.application_no)).one()
            order = PaymentOrder(
                idempotency_key=inp.order_key,
                amount=payout.amount,
                payee_account=payout.payee_account,
                payee_name=payout.payee_name,
                payer_account=self.payer_account,
                reference=f"{loan.contract_no} 放款",
                callback_url=self.callback_url(),
            )
            attempt = activity.info().attempt
            payout.status = "sent"
            append_audit(
                s,
                key=f"payout/{inp.order_key}/send/{attempt}",
                application_no=inp.application_no,
                actor="system",
                action="payout.order_sent",
                occurred_at=payout.updated_at,
                detail={"order_key": inp.order_key, "attempt": attempt},
            )
        if attempt > 1:
            known = self.bank.status(inp.order_key)  # BankUnavailable: retried
            if known is not None:
                return self._outcome(known)
        try:
            return self._outcome(self.bank.pay(order))
        except BankRejected as exc:
            return OrderOutcome(
                OrderState.REJECTED.value,
                inp.order_key,
                exc.status.order_id if exc.status else None,
                reason_code=exc.reason_code,
                reason=exc.reason or exc.reason_code,
            )
        except BankOutcomeUnknown as exc:
            # Retried; the retry asks the bank for the key's order before sending again.
            raise ApplicationError(str(exc), type=OUTCOME_UNKNOWN) from exc
        except BankRequestRefused as exc:
            raise ApplicationError(
                "the bank refused the payment order",
                str(exc),
                type=BUSINESS_REFUSAL,
                non_retryable=True,
            ) from exc

    @activity.defn
    def payment_order_status(self, inp: OrderInput) -> OrderOutcome:
        """The order as the bank states it, waiting (polling, heartbeating) up to
        ``wait_seconds`` while it is pending. ``missing``: the bank never accepted the key."""
        deadline = time.monotonic() + inp.wait_seconds
        while True:
            known = self.bank.status(inp.order_key)
            if known is None:
                return OrderOutcome("missing", inp.order_key)
            if known.status != "pending" or time.monotonic() >= deadline:
                return self._outcome(known)
            activity.heartbeat(known.status)
            time.sleep(POLL_INTERVAL_SECONDS)

    @staticmethod
    def _outcome(st: PaymentStatus) -> OrderOutcome:
        return OrderOutcome(
            st.status,
            st.idempotency_key,
            st.order_id,
            value_date=st.value_date,
            reason_code=st.reason_code,
            reason=st.reason,
        )

    # ---- after the bank ------------------------------------------------------------------------

    @activity.defn
    def release_payout(self, inp: ReleasePayoutInput) -> None:
        """The payout attempt will not be paid (the bank rejected it, or a person refused it):
        give its reservation back to the pool and record why."""
        with Session(self.engine, expire_on_commit=False) as s:
            if s.get(funding.FundingReservation, inp.order_key) is not None:
                funding.release(s, key=inp.order_key, actor="system", at=inp.at)
        with session_scope(self.engine) as s:
            row = s.get(Payout, inp.order_key)
            if row is not None and row.status != "executed":
                row.status = "released"
                row.reason = inp.reason[:500]
                row.updated_at = inp.at
            append_audit(
                s,
                key=f"payout/{inp.order_key}/released",
                application_no=inp.application_no,
                actor="system",
                action="payout.released",
                occurred_at=inp.at,
                detail={"order_key": inp.order_key, "reason": inp.reason},
            )

    @activity.defn
    def record_payout(self, inp: RecordPayoutInput) -> None:
        """The bank executed the order: the pool pays it out (the reservation consumed), the
        disbursement is recorded once, the loan is disbursed, the borrower is told."""
        with Session(self.engine, expire_on_commit=False) as s:
            funding.consume(
                s, key=inp.order_key, actor="system", at=inp.at, bank_order_id=inp.bank_order_id
            )
        with session_scope(self.engine) as s:
            if s.exec(
                select(Disbursement).where(Disbursement.idempotency_key == inp.order_key)
            ).first():
                return
            payout = s.get(Payout, inp.order_key)
            if payout is None:
                raise RuntimeError(f"payout {inp.order_key} has no pre-check record")
            loan = s.exec(select(Loan).where(Loan.application_no == inp.application_no)).one()
            checklist = {c["name"]: c["ok"] for c in payout.checklist}
            s.add(
                Disbursement(
                    application_no=inp.application_no,
                    idempotency_key=inp.order_key,
                    amount=inp.principal,
                    net_amount=inp.net_amount,
                    bank_card=payout.payee_account,
                    approved_by=inp.authorized_by[0] if inp.authorized_by else inp.requested_by,
                    checklist=checklist,
                    created_at=inp.at,
                    bank_order_id=inp.bank_order_id,
                    value_date=inp.value_date,
                )
            )
            payout.status = "executed"
            payout.bank_order_id = inp.bank_order_id
            payout.value_date = inp.value_date
            payout.updated_at = inp.at
            loan.disbursed_at = inp.at
            loan.disbursed_by = inp.authorized_by[0] if inp.authorized_by else inp.requested_by
            loan.status = "disbursed"
            append_audit(
                s,
                key=f"{inp.application_no}/disbursed",
                application_no=inp.application_no,
                actor=loan.disbursed_by,
                action="loan.disbursed",
                occurred_at=inp.at,
                detail={
                    "amount": str(inp.principal),
                    "net_amount": str(inp.net_amount),
                    "order_key": inp.order_key,
                    "bank_order_id": inp.bank_order_id,
                    "value_date": inp.value_date.isoformat(),
                    "requested_by": inp.requested_by,
                    "authorized_by": list(inp.authorized_by),
                    "checklist": checklist,
                },
            )
            # A transaction confirmation, sent at once (not a collection contact: the contact
            # window does not hold it).
            enqueue_notice(
                s,
                key=f"{inp.application_no}/disbursed/borrower",
                application_no=inp.application_no,
                channel=Channel.SMS.value,
                recipient=BORROWER_RECIPIENT,
                template="loan_disbursed",
                payload={
                    "amount": format_money(inp.net_amount),
                    "card": mask_bank_card(payout.payee_account),
                    "value_date": inp.value_date.isoformat(),
                    "contract_no": loan.contract_no,
                },
                created_at=inp.at,
            )
