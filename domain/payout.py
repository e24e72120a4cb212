"""The payout (seed §3.5, §4.4): what is checked before the money goes out, the keys one payout
is known by at the bank and in the funding pool, and the tiered four-eyes rule.

Pure code, shared by the origination workflow (which decides), the payout workflow (which talks
to the bank through activities) and the activities (which check and record).

Keys. Attempt 1 of a loan's payout is ``disburse-<application_no>``: the bank executes one
order per key, so sending it again after a timeout, a crash or a 5xx never pays twice. Only a
*definitive* rejection by the bank ends a key; the next attempt (after a person fixed the
cause and chose to retry) is ``disburse-<application_no>-2`` and so on. The funding pool's
reservation uses the same key (a released reservation keeps its fate: a new one needs a new
key). The payout workflow's id is ``payout-<order key>``: the bank's callback names the key,
and the API signals that workflow without any look-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

PAYOUT_PATCH = "payout-v1"
PAYOUT_WORKFLOW = "PayoutWorkflow"
BANK_CALLBACK_SIGNAL = "bank_callback"


def order_key(application_no: str, attempt: int) -> str:
    """The bank order's idempotency key (and the funding reservation's) of payout ``attempt``."""
    base = f"disburse-{application_no}"
    return base if attempt == 1 else f"{base}-{attempt}"


def payout_workflow_id(key: str) -> str:
    return f"payout-{key}"


def key_of_workflow(workflow_id: str) -> str | None:
    return workflow_id.removeprefix("payout-") if workflow_id.startswith("payout-") else None


class Check(StrEnum):
    """The pre-check list (seed §3.5: re-check the borrower data and the contract terms)."""

    CONTRACT_SIGNED = "contract_signed"
    LENDER_SEALED = "lender_sealed"
    CONTRACT_UNALTERED = "contract_unaltered"
    TERMS_MATCH_OFFER = "terms_match_offer"
    PAYEE_IS_CONTRACT_ACCOUNT = "payee_is_contract_account"
    ACCOUNT_VERIFIED = "account_verified"
    IDENTITY_VALID = "identity_valid"
    NOT_BLACKLISTED = "not_blacklisted"
    CAPS_HOLD = "caps_hold"
    NO_OTHER_DISBURSEMENT = "no_other_disbursement"
    FUNDS_RESERVED = "funds_reserved"


CHECK_LABELS: dict[Check, str] = {
    Check.CONTRACT_SIGNED: "借款人已签署合同",
    Check.LENDER_SEALED: "贷款人已盖章",
    Check.CONTRACT_UNALTERED: "合同文件与签署时一致（SHA-256）",
    Check.TERMS_MATCH_OFFER: "金额、期限、利率、还款方式、费用与已接受的报价一致",
    Check.PAYEE_IS_CONTRACT_ACCOUNT: "收款账户为合同载明的账户",
    Check.ACCOUNT_VERIFIED: "银行确认账户属于借款人",
    Check.IDENTITY_VALID: "身份信息仍然有效",
    Check.NOT_BLACKLISTED: "借款人不在黑名单上",
    Check.CAPS_HOLD: "借款限额仍然满足",
    Check.NO_OTHER_DISBURSEMENT: "本笔贷款没有其他放款",
    Check.FUNDS_RESERVED: "资金池资金已预留",
}


@dataclass(frozen=True)
class CheckItem:
    name: Check
    ok: bool
    detail: str

    def line(self) -> str:
        mark = "通过" if self.ok else "未通过"
        return f"{CHECK_LABELS[self.name]}（{self.name.value}）：{mark}——{self.detail}"


@dataclass(frozen=True)
class PrecheckResult:
    """The checked list, stored with the payout; ``amount`` is what the bank will be asked to
    pay (the net payout). No personal data: the payee account stays in the database."""

    items: tuple[CheckItem, ...]
    amount: Decimal
    order_key: str

    @property
    def ok(self) -> bool:
        return all(i.ok for i in self.items)

    @property
    def failed(self) -> tuple[CheckItem, ...]:
        return tuple(i for i in self.items if not i.ok)

    @property
    def only_funds_missing(self) -> bool:
        """Every check passed but the pool could not set the money aside: the payout waits
        for a top-up instead of going to a person as a refusal."""
        failed = self.failed
        return bool(failed) and all(i.name == Check.FUNDS_RESERVED for i in failed)

    def reasons(self) -> list[str]:
        """What stops the payout: the failed checks (the funds are only reserved once every
        other check passed, so their item then says nothing new)."""
        failed = self.failed
        primary = [i for i in failed if i.name != Check.FUNDS_RESERVED]
        return [i.line() for i in (primary or failed)]


def needs_manager(amount: Decimal, limit: Decimal) -> bool:
    """Above the loan policy's limit the department manager authorizes too (tiered
    four-eyes); at the limit exactly, two operations specialists suffice."""
    return amount > limit


class OrderState(StrEnum):
    PENDING = "pending"
    EXECUTED = "executed"
    REJECTED = "rejected"
    # The bank could not be reached after the retries (the order may or may not exist).
    UNAVAILABLE = "unavailable"
    # Our request was refused (a key reused with another body: a defect to look at).
    REFUSED = "refused"


def start_date_of(value_date: date, business_date: date) -> date:
    """The loan's start: the bank's value date; a value date before the business date on which
    the payout was confirmed (a confirmation that came after midnight, a bank in another zone)
    starts it on the confirmation day, so no installment is due before the loan was booked."""
    return max(value_date, business_date)
