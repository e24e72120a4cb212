"""Notice rules: back-off, mobile numbers, the borrower's words for rejection reasons, and a
template on disk for every template the outbox knows (rendered with the payloads the code
queues)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from domain.notices import (
    GENERIC_REJECTION,
    INBOX_TEMPLATES,
    REDACTED,
    SECRET_TEMPLATES,
    SMS_TEMPLATES,
    normalize_mobile,
    redacted,
    rejection_reason_text,
    retry_delay,
)
from loanops.notice_text import TEMPLATES_DIR, NoticeTemplateError, render_notice


def test_retry_delay_doubles_up_to_the_cap() -> None:
    base, cap = timedelta(seconds=5), timedelta(seconds=60)
    delays = [retry_delay(n, base=base, cap=cap).total_seconds() for n in range(1, 7)]
    assert delays == [5, 10, 20, 40, 60, 60]
    with pytest.raises(ValueError):
        retry_delay(0, base=base, cap=cap)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13800138000", "13800138000"),
        ("+8613800138000", "13800138000"),
        ("8619912345678", "19912345678"),
        (" 13800138000 ", "13800138000"),
        ("12800138000", None),
        ("1380013800", None),
        ("138001380001", None),
        ("010-12345678", None),
        ("borrower", None),
    ],
)
def test_mainland_mobile_numbers(raw: str, expected: str | None) -> None:
    assert normalize_mobile(raw) == expected


def test_rejection_reasons_in_the_borrowers_words() -> None:
    assert rejection_reason_text(["DTI_HIGH", "DTI_VERY_HIGH", "KO_SEVERE_DELINQUENCY"]) == (
        "负债水平相对收入过高；信用记录中存在严重逾期"
    )
    # Internal detail (a blacklist) is named in general terms only.
    assert "黑名单" not in rejection_reason_text(["KO_BLACKLIST"])
    assert rejection_reason_text([]) == GENERIC_REJECTION
    assert rejection_reason_text(["DEPARTMENT_OWN_CODE"]) == GENERIC_REJECTION


def test_redaction_keeps_the_keys_only() -> None:
    assert redacted({"code": "123456", "minutes": 5}) == {"code": REDACTED, "minutes": REDACTED}
    assert {"signing_code", "contract_signing_link"} == SECRET_TEMPLATES


# The payloads the code queues (activities/*.py), and those of the signing templates.
SAMPLE_PAYLOADS: dict[tuple[str, str], dict[str, Any]] = {
    ("sms", "installment_reminder"): {
        "installment": 2,
        "business_date": "2026-03-02",
        "days_past_due": 0,
    },
    ("sms", "installment_overdue"): {
        "installment": 2,
        "business_date": "2026-03-12",
        "days_past_due": 3,
    },
    ("sms", "collections_notice"): {"days_past_due": 1, "overdue_amount": "4043.16"},
    ("sms", "loan_disbursed"): {
        "amount": "50,000.00",
        "card": "6222 **** 3446",
        "value_date": "2026-03-02",
        "contract_no": "HTA20260302-000007",
    },
    ("sms", "refund_paid"): {
        "amount": "10.00",
        "card": "6222 **** 3446",
        "value_date": "2026-06-02",
        "contract_no": "HTA20260302-000007",
    },
    ("inbox", "archive_integrity"): {"documents": "HTA20260302-000007.pdf"},
    ("sms", "application_expired"): {},
    ("sms", "application_rejected"): {"reason": "负债水平相对收入过高"},
    ("sms", "contract_signing_link"): {
        "url": "https://loanops.example/sign/abc",
        "contract_no": "HT-A20260101-000001",
        "sign_by": "2026年3月7日",
    },
    ("sms", "signing_code"): {"code": "482913", "minutes": 10},
    ("inbox", "application_expired"): {"stage": "EXPIRED", "reason": "deadline passed"},
    ("inbox", "application_rejected"): {"stage": "REJECTED", "reason": "rejected"},
    ("inbox", "installment_overdue_staff"): {
        "installment": 1,
        "business_date": "2026-03-12",
        "days_past_due": 1,
    },
    ("inbox", "refund_overpayment"): {"amount": "12.34"},
    ("inbox", "task_escalated"): {
        "task_id": "t",
        "kind": "intake_review",
        "level": 2,
        "handed_to": "department_manager",
    },
}


def test_every_known_template_is_on_disk_and_nothing_else() -> None:
    on_disk = {
        (channel, p.stem)
        for channel in ("sms", "inbox")
        for p in (TEMPLATES_DIR / channel).glob("*.txt")
    }
    known = {("sms", t) for t in SMS_TEMPLATES} | {("inbox", t) for t in INBOX_TEMPLATES}
    assert on_disk == known == set(SAMPLE_PAYLOADS)


@pytest.mark.parametrize(("channel", "template"), sorted(SAMPLE_PAYLOADS))
def test_each_template_renders_its_payload_on_one_line(channel: str, template: str) -> None:
    text = render_notice(
        channel, template, SAMPLE_PAYLOADS[(channel, template)], application_no="A20260302-000007"
    )
    assert "\n" not in text and "{{" not in text
    if channel == "sms":
        assert text.startswith("【LoanOps】") and len(text) <= 500
    # What the borrower must read is in the text (the event's date is not: it is today).
    for key, value in SAMPLE_PAYLOADS[(channel, template)].items():
        if channel == "sms" and key != "business_date":
            assert str(value) in text, key


def test_a_missing_value_or_template_is_an_error_not_an_empty_string() -> None:
    with pytest.raises(NoticeTemplateError, match="code"):
        render_notice("sms", "signing_code", {"minutes": 5}, application_no=None)
    with pytest.raises(NoticeTemplateError, match="no template"):
        render_notice("sms", "nothing", {}, application_no=None)


def test_the_templates_the_activities_queue_are_known() -> None:
    """Every literal template name in the activities that queue notices is a known one (the
    two built with an f-string are the application endings)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "activities"
    names = set()
    for path in root.glob("*.py"):
        names |= set(re.findall(r'template="([a-z_]+)"', path.read_text(encoding="utf-8")))
    assert names
    assert names <= SMS_TEMPLATES | INBOX_TEMPLATES, names - (SMS_TEMPLATES | INBOX_TEMPLATES)
