"""The borrower's e-signature, as rules: the risk disclosure items the borrower confirms one by
one, the one-time code that proves the signer holds the borrower's phone, and the names of the
notices that carry the link and the code (delivered by the SMS relay from the outbox).

Pure: no I/O. The API issues and checks codes with these numbers; the worker records the
signature; the workflow waits for the lender's seal (``TaskKind.LENDER_SEAL``).
"""

from dataclasses import dataclass
from datetime import timedelta

# The outbox templates (channel "sms", recipient "borrower").
SIGNING_LINK_TEMPLATE = "contract_signing_link"
SIGNING_CODE_TEMPLATE = "signing_code"
SMS_CHANNEL = "sms"
BORROWER_RECIPIENT = "borrower"

# The one-time code.
CODE_DIGITS = 6
CODE_VALID_FOR = timedelta(minutes=5)
CODE_MAX_TRIES = 5
# A new code no sooner than this after the previous one (429 otherwise).
CODE_RESEND_AFTER = timedelta(seconds=60)

# The link: this many failed identity checks (name, last four of the ID) lock it.
MAX_IDENTITY_FAILURES = 5

# The document kinds of the contract before and after the borrower's signature.
CONTRACT_KIND = "contract"
SIGNED_CONTRACT_KIND = "contract_signed"

# Workflow patch: after the borrower signs, the lender's authorized signatory seals.
LENDER_SEAL_PATCH = "lender-seal-v1"


@dataclass(frozen=True)
class DisclosureItem:
    """One risk disclosure the borrower must confirm, by id, before signing (seed §3.4: the
    borrower has the terms and the risks explained and agrees to them)."""

    id: str
    text_zh: str
    text_en: str


DISCLOSURE_ITEMS: tuple[DisclosureItem, ...] = (
    DisclosureItem(
        "cost",
        "我已知悉本借款的年化利率（按实际现金流计算，含全部费用）及应还总额。",
        "I know the annualized rate of this loan (by its real cash flows, fees included) "
        "and the total I will repay.",
    ),
    DisclosureItem(
        "schedule",
        "我已阅读还款计划，将按期足额还款。",
        "I have read the repayment schedule and will repay every installment in full and on time.",
    ),
    DisclosureItem(
        "penalty",
        "我已知悉逾期将按合同约定计收罚息。",
        "I know that an overdue installment accrues penalty interest as the contract states.",
    ),
    DisclosureItem(
        "credit_record",
        "我已知悉逾期信息可能依法报送征信机构，影响本人信用记录。",
        "I know that overdue payments may be reported to credit bureaus as the law allows, "
        "affecting my credit record.",
    ),
    DisclosureItem(
        "own_decision",
        "我确认借款用途真实合法，系本人真实意愿，并自行承担借款风险。",
        "I confirm the purpose is true and lawful, that borrowing is my own decision, and that "
        "I bear its risks.",
    ),
)

DISCLOSURE_IDS: tuple[str, ...] = tuple(item.id for item in DISCLOSURE_ITEMS)


def unconfirmed(confirmed: list[str] | tuple[str, ...]) -> list[str]:
    """The disclosure ids not in ``confirmed``, in their order."""
    given = set(confirmed)
    return [i for i in DISCLOSURE_IDS if i not in given]


def unknown_confirmations(confirmed: list[str] | tuple[str, ...]) -> list[str]:
    """Ids in ``confirmed`` that are not disclosure items."""
    return [c for c in confirmed if c not in DISCLOSURE_IDS]
