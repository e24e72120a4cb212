"""The refund of a settled loan's credit (issue 12 §2, settlement-refund-v1): its statuses, its
bank order key and the child workflow that pays it.

A loan that settles with credit (an overpayment: paid after the last fen, before the settlement
was confirmed) opens a ``refund`` task (maker) and a ``refund_authorization`` task (checker, not
the maker); the bank then pays the amount to the account the signed contract names, once per
order key ``refund-<application_no>`` (``-<n>`` for the n-th order after a rejection).
"""

from __future__ import annotations

from enum import StrEnum

from domain.payout import payout_workflow_id

REFUND_PATCH = "settlement-refund-v1"
REFUND_WORKFLOW = "RefundWorkflow"


class RefundStatus(StrEnum):
    AWAITING_MAKER = "awaiting_maker"  # the refund task is open (or held)
    AWAITING_CHECKER = "awaiting_checker"  # requested: the authorization task is open
    SENT = "sent"  # authorized: the bank order is out
    PAID = "paid"  # the bank executed it (bank order id, value date)
    FAILED = "failed"  # rejected by the bank or the bank down: the refund_failed task is open
    CLOSED = "closed"  # closed by a person, saying how the money was returned otherwise


DONE = frozenset({RefundStatus.PAID, RefundStatus.CLOSED})


def refund_order_key(application_no: str, attempt: int) -> str:
    """The refund's bank order idempotency key: one per order sent (a retry after an outage
    sends the same key again, so the bank never pays twice)."""
    base = f"refund-{application_no}"
    return base if attempt == 1 else f"{base}-{attempt}"


def refund_workflow_id(key: str) -> str:
    """The refund order's workflow: named like a payout's, so the bank's callbacks reach it."""
    return payout_workflow_id(key)
