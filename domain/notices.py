"""Notices to borrowers and staff: the templates the outbox knows, which of them are secret, the
delivery statuses and back-off, and the borrower-facing (zh-CN) words for rejection reasons."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from enum import StrEnum


class Channel(StrEnum):
    SMS = "sms"  # to the borrower's mobile, through the SMS gateway
    INBOX = "inbox"  # to a staff user or role, read in the app


class NoticeStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"  # the gateway accepted it
    DELIVERED = "delivered"
    FAILED = "failed"


# The recipient of borrower messages: the borrower of the notice's application, whose mobile
# number is read from that application's borrower data at send time.
BORROWER_RECIPIENT = "borrower"

SMS_TEMPLATES = frozenset(
    {
        "installment_reminder",
        "installment_overdue",
        "application_expired",
        "application_rejected",
        "contract_signing_link",
        "signing_code",
        "loan_disbursed",
        # A settled loan's overpayment refunded to the contract's account (settlement-refund-v1).
        "refund_paid",
        # The collections ladder's SMS step (an episode's overdue amount).
        "collections_notice",
    }
)
INBOX_TEMPLATES = frozenset(
    {
        "application_expired",
        "application_rejected",
        "installment_overdue_staff",
        "refund_overpayment",
        "task_escalated",
        # A settled loan's archive found a document missing or changed (operations).
        "archive_integrity",
    }
)
# Their text lets someone act as the borrower: never shown by the API, and the payload is
# redacted from the row once the gateway has accepted the message.
SECRET_TEMPLATES = frozenset({"signing_code", "contract_signing_link"})
REDACTED = "[redacted]"


def is_secret(template: str) -> bool:
    return template in SECRET_TEMPLATES


def redacted(payload: dict[str, object]) -> dict[str, object]:
    """The payload with every value replaced (its keys kept, to show what was sent)."""
    return dict.fromkeys(payload, REDACTED)


def retry_delay(attempts: int, *, base: timedelta, cap: timedelta) -> timedelta:
    """Exponential back-off after the ``attempts``-th failed attempt: base, 2·base, 4·base… ≤ cap."""
    if attempts < 1:
        raise ValueError("attempts: must be at least 1")
    return min(base * (2 ** (attempts - 1)), cap)


# Mainland mobile numbers: 11 digits starting 13–19 (an optional +86 / 86 prefix).
_MOBILE = re.compile(r"^(?:\+?86)?(1[3-9]\d{9})$")


def normalize_mobile(value: str) -> str | None:
    """The 11-digit mainland mobile number, or None when ``value`` is not one."""
    match = _MOBILE.match(value.strip())
    return match.group(1) if match else None


# What a borrower is told for a rejection reason: plain, polite, no internal detail (scores,
# data sources, blacklists are named in general terms only). Codes not listed fall back to
# GENERIC_REJECTION.
REJECTION_REASONS: dict[str, str] = {
    "KO_AGE_UNDER_MIN": "年龄不符合借款条件",
    "KO_AGE_OVER_MAX": "年龄不符合借款条件",
    "KO_BLACKLIST": "未通过综合信用评估",
    "KO_DTI_OVER_LIMIT": "负债水平相对收入过高",
    "KO_CAPS_EXCEEDED": "借款余额将超过规定上限",
    "KO_SEVERE_DELINQUENCY": "信用记录中存在严重逾期",
    "KO_PROHIBITED_PURPOSE": "借款用途不符合规定",
    "DTI_HIGH": "负债水平相对收入过高",
    "DTI_VERY_HIGH": "负债水平相对收入过高",
    "DTI_ELEVATED": "负债水平相对收入偏高",
    "INCOME_VERY_LOW": "收入水平不足",
    "INCOME_LOW": "收入水平不足",
    "EMPLOYMENT_UNDER_1Y": "工作年限较短",
    "EMPLOYMENT_UNKNOWN": "未提供工作信息",
    "AGE_UNDER_22": "年龄不符合借款条件",
    "DELINQ_ONE": "信用记录中存在逾期",
    "DELINQ_TWO": "信用记录中存在逾期",
    "DELINQ_THREE_PLUS": "信用记录中存在多次逾期",
    "ENQUIRIES_6_9": "近期信用查询较多",
    "ENQUIRIES_10_PLUS": "近期信用查询较多",
    "PLATFORMS_3_4": "在其他平台的借款较多",
    "PLATFORMS_5_PLUS": "在其他平台的借款较多",
    "PURPOSE_PROHIBITED": "借款用途不符合规定",
    "PURPOSE_HOME_PURCHASE": "借款用途不符合规定",
    "PURPOSE_SECURITIES": "借款用途不符合规定",
}
GENERIC_REJECTION = "未通过综合评估"


def rejection_reason_text(codes: Iterable[str]) -> str:
    """The borrower's words for a rejection's reason codes: each distinct text once, in order,
    joined by "；"; the generic text when no code is known."""
    texts: list[str] = []
    for code in codes:
        text = REJECTION_REASONS.get(code)
        if text and text not in texts:
            texts.append(text)
    return "；".join(texts) if texts else GENERIC_REJECTION
