"""Five-category classification: every DPD line at its boundary, each event, overrides and
when they lapse, the policy as data."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from domain.balances import InstallmentBalance
from domain.classification import (
    DEFAULT_CLASSIFICATION_POLICY,
    Category,
    ClassificationPolicy,
    LoanEvent,
    check_override,
    classify,
    days_past_due,
    override_holds,
)
from domain.policy import DEFAULT_POLICY, LoanPolicy

N, SM, SUB, DBT, LOSS = (
    Category.NORMAL,
    Category.SPECIAL_MENTION,
    Category.SUBSTANDARD,
    Category.DOUBTFUL,
    Category.LOSS,
)


@pytest.mark.parametrize(
    ("dpd", "expected"),
    [
        (0, N),
        (1, SM),
        (90, SM),
        (91, SUB),
        (270, SUB),
        (271, DBT),
        (360, DBT),
        (361, LOSS),
        (1000, LOSS),
    ],
)
def test_dpd_lines_at_each_boundary(dpd: int, expected: Category) -> None:
    assert classify(dpd).category == expected


def test_the_reason_names_the_line_reached() -> None:
    assert classify(91).reason == "91 days past due (> 90): 次级 substandard"
    assert classify(0).reason == "not past due: 正常 normal"
    assert classify(5).days_past_due == 5


@pytest.mark.parametrize(
    ("event", "dpd", "expected"),
    [
        (LoanEvent.RESTRUCTURED, 0, SUB),
        (LoanEvent.RESTRUCTURED, 300, DBT),  # the DPD line is worse: it wins
        (LoanEvent.LEGAL_ACTION, 0, SUB),
        (LoanEvent.LEGAL_ACTION, 10, SUB),
        (LoanEvent.WRITTEN_OFF, 0, LOSS),
        (LoanEvent.WRITTEN_OFF, 100, LOSS),
    ],
)
def test_each_event_floors_the_category(event: LoanEvent, dpd: int, expected: Category) -> None:
    assert classify(dpd, [event]).category == expected


def test_reason_lists_every_rule_reaching_the_category() -> None:
    c = classify(95, [LoanEvent.RESTRUCTURED, LoanEvent.LEGAL_ACTION])
    assert c.category == SUB
    assert c.reason == (
        "95 days past due (> 90): 次级 substandard; restructured: at least 次级 substandard; "
        "legal action: at least 次级 substandard"
    )
    assert (
        classify(300, [LoanEvent.RESTRUCTURED]).reason == "300 days past due (> 270): 可疑 doubtful"
    )


def test_days_past_due_from_the_oldest_unpaid_installment() -> None:
    def inst(n: int, due: date, paid: bool) -> InstallmentBalance:
        amt = Decimal("100.00")
        return InstallmentBalance(
            number=n,
            due_date=due,
            principal_due=amt,
            interest_due=Decimal("5.00"),
            fee_due=Decimal("0.00"),
            principal_paid=amt if paid else Decimal("0.00"),
            interest_paid=Decimal("5.00") if paid else Decimal("0.00"),
        )

    rows = [
        inst(1, date(2026, 1, 10), True),
        inst(2, date(2026, 2, 10), False),
        inst(3, date(2026, 3, 10), False),
    ]
    assert days_past_due(rows, date(2026, 2, 10)) == 0  # the due date itself is not overdue
    assert days_past_due(rows, date(2026, 2, 11)) == 1
    assert days_past_due(rows, date(2026, 3, 15)) == 33  # 2026-02-10 → 2026-03-15
    # Penalty left unpaid keeps an installment overdue.
    unpaid_penalty = InstallmentBalance(
        number=1,
        due_date=date(2026, 1, 10),
        principal_due=Decimal("100.00"),
        interest_due=Decimal("0.00"),
        fee_due=Decimal("0.00"),
        principal_paid=Decimal("100.00"),
        penalty_accrued=Decimal("0.50"),
    )
    assert days_past_due([unpaid_penalty], date(2026, 1, 20)) == 10


# ---- manual override --------------------------------------------------------------------


def test_an_override_may_not_be_better_than_the_floor() -> None:
    with pytest.raises(ValueError, match=r"^category: normal \(正常\) is better"):
        check_override(N, classify(30))
    with pytest.raises(ValueError, match="category: substandard"):
        check_override(SUB, classify(0, [LoanEvent.WRITTEN_OFF]))
    check_override(DBT, classify(30))  # a downgrade is always allowed
    check_override(SM, classify(30))


def test_a_technical_overdue_may_be_kept_normal_until_day_8() -> None:
    """办法 art. 10: a short overdue (≤ 7 days) for technical reasons may stay 正常."""
    check_override(N, classify(7))
    assert override_holds(N, classify(7))
    assert not override_holds(N, classify(8))
    with pytest.raises(ValueError):
        check_override(N, classify(8))
    # Not with an event.
    with pytest.raises(ValueError):
        check_override(N, classify(3, [LoanEvent.LEGAL_ACTION]))


def test_a_downgrade_holds_until_the_dpd_rule_is_worse() -> None:
    assert override_holds(SUB, classify(0))  # the loan recovers: the override stays
    assert override_holds(SUB, classify(40))
    assert override_holds(SUB, classify(270))  # the rule says 次级: not worse
    assert not override_holds(SUB, classify(271))  # 可疑 is worse: lapses
    assert not override_holds(DBT, classify(0, [LoanEvent.WRITTEN_OFF]))
    assert override_holds(LOSS, classify(0, [LoanEvent.WRITTEN_OFF]))


# ---- the policy as data -----------------------------------------------------------------


def _policy(**rules: object) -> ClassificationPolicy:
    """The classification lines of a loan policy version with ``rules`` changed."""
    return LoanPolicy.from_rules(
        version=2, effective_from=date(2026, 1, 1), source="test", rules=rules
    ).classification


def test_the_lines_are_the_loan_policy_s_rules() -> None:
    assert DEFAULT_POLICY.classification == DEFAULT_CLASSIFICATION_POLICY
    assert {k: v for k, v in DEFAULT_POLICY.rules().items() if k.startswith("classification_")} == {
        "classification_special_mention_after_days": 0,
        "classification_substandard_after_days": 90,
        "classification_doubtful_after_days": 270,
        "classification_loss_after_days": 360,
        "classification_technical_overdue_days": 7,
        "classification_restructured_floor": "substandard",
        "classification_legal_action_floor": "substandard",
    }
    stricter = _policy(
        classification_substandard_after_days=60,
        classification_legal_action_floor="doubtful",
        classification_technical_overdue_days=3,
    )
    assert classify(61, policy=stricter).category == SUB
    assert classify(60, policy=stricter).category == SM
    assert classify(60).category == SM and classify(91).category == SUB
    assert classify(0, [LoanEvent.LEGAL_ACTION], stricter).category == DBT
    assert classify(3, policy=stricter).floor == N
    assert classify(4, policy=stricter).floor == SM
    assert classify(4).floor == N
    # A written-off loan is 损失 whatever the policy says of the other events.
    assert classify(0, [LoanEvent.WRITTEN_OFF], stricter).category == LOSS


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            {"classification_doubtful_after_days": 90},
            "classification_doubtful_after_days: must be greater",
        ),
        (
            {"classification_special_mention_after_days": -1},
            "classification_special_mention_after_days: must not be negative",
        ),
        (
            {"classification_loss_after_days": "400x"},
            "classification_loss_after_days: must be a whole",
        ),
        (
            {"classification_restructured_floor": "bad"},
            "classification_restructured_floor: must be one of",
        ),
        (
            {"classification_legal_action_floor": "normal"},
            "classification_legal_action_floor: an event",
        ),
        ({"classification_technical_overdue_days": 100}, "classification_technical_overdue_days:"),
        (
            {"classification_written_off_floor": "doubtful"},
            "rules.classification_written_off_floor",
        ),
    ],
)
def test_bad_lines_are_refused_naming_the_rule(rules: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _policy(**rules)


def test_negative_dpd_is_refused() -> None:
    with pytest.raises(ValueError, match="days_past_due"):
        classify(-1)
