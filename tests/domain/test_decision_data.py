"""Decision data typed per task kind (issue 12 §5): every decision of every kind declares its
data (a shape whose unknown keys are refused, or none at all), the API's and the validators'
check refuses what the shape does not name, and the lenient parse the workflows run on recorded
decisions still reads them."""

from __future__ import annotations

from typing import Any

import pytest

from domain.decision_data import shapes_schema
from domain.tasks import TASK_RULES, TaskKind

# One valid ``data`` for every decision that takes some (kind, decision) → data.
VALID: dict[tuple[TaskKind, str], dict[str, Any]] = {
    (TaskKind.INTAKE_REVIEW, "return"): {"items": ["income_proof"]},
    (TaskKind.RISK_REVIEW, "reject"): {"reason_codes": ["DTI_HIGH"]},
    (TaskKind.PRODUCT_MATCHING, "approve"): {
        "product_code": "SMB_OPERATING",
        "product_version": 1,
        "amount": "50000.00",
        "term_months": 6,
        "annual_rate": "0.108",
        "method": "equal_installment",
    },
    (TaskKind.LENDER_SEAL, "refuse"): {"reason": "签约主体核验未通过"},
    (TaskKind.FOLLOW_UP_CALL, "reached"): {
        "funds_use": "other_purpose",
        "income_change": "unchanged",
        "repayment_plan": "on_track",
        "funds_detail": "装修",
        "notes": "",
    },
    (TaskKind.POST_LOAN_REVIEW, "watch"): {"reason": "income lost"},
    (TaskKind.POST_LOAN_REVIEW, "accelerate_collection"): {"reason": "late elsewhere"},
}
for _kind in (TaskKind.REMINDER_CALL, TaskKind.COLLECTION_CALL, TaskKind.FIELD_VISIT):
    _report = {"report": "上门走访"} if _kind == TaskKind.FIELD_VISIT else {}
    VALID[(_kind, "reached")] = {"spoke_with": "borrower", "note": "ok", **_report}
    VALID[(_kind, "dispute")] = {"spoke_with": "borrower", **_report}
    VALID[(_kind, "unreachable")] = {"note": "no answer", **_report}
    VALID[(_kind, "wrong_number")] = {**_report}
    VALID[(_kind, "promise_to_pay")] = {
        "promise_amount": "100.00",
        "promise_date": "2026-12-01",
        **_report,
    }

DECISIONS = [(kind, decision) for kind, rule in TASK_RULES.items() for decision in rule.decisions]


def test_every_task_kind_has_its_rules() -> None:
    assert set(TASK_RULES) == set(TaskKind)


@pytest.mark.parametrize(("kind", "decision"), DECISIONS)
def test_every_decision_declares_its_data(kind: TaskKind, decision: str) -> None:
    rule = TASK_RULES[kind]
    schema = shapes_schema(rule.data_shapes(decision))
    if (kind, decision) not in VALID:
        assert schema is None, f"{kind} {decision} declares data the table has no example of"
        assert rule.check_data(kind.value, decision, None) is None
        assert rule.check_data(kind.value, decision, {}) is None
        with pytest.raises(ValueError, match=rf"^data: {kind.value} {decision} takes no data$"):
            rule.check_data(kind.value, decision, {"note": "x"})
        return
    assert schema is not None
    for shape in schema.get("anyOf", [schema]):
        assert shape["additionalProperties"] is False
    data = VALID[(kind, decision)]
    assert rule.check_data(kind.value, decision, data) is not None
    declared = {k for shape in schema.get("anyOf", [schema]) for k in shape["properties"]}
    assert set(data) <= declared
    with pytest.raises(
        ValueError, match=rf"^data\.colour: is not a field of {kind.value} {decision}$"
    ):
        rule.check_data(kind.value, decision, {**data, "colour": "red"})


def test_a_promise_is_a_field_of_promise_to_pay_only() -> None:
    rule = TASK_RULES[TaskKind.REMINDER_CALL]
    with pytest.raises(ValueError, match=r"^data\.promise_amount: is not a field of"):
        rule.check_data("reminder_call", "reached", {"promise_amount": "1.00"})
    with pytest.raises(ValueError, match=r"^data\.spoke_with: is not a field of"):
        rule.check_data("reminder_call", "unreachable", {"spoke_with": "borrower"})


def test_the_check_still_applies_each_fields_rule() -> None:
    rule = TASK_RULES[TaskKind.RISK_REVIEW]
    with pytest.raises(ValueError, match=r"^data\.reason_codes\[0\]: must be an upper-case"):
        rule.check_data("risk_review", "reject", {"reason_codes": ["dti"]})
    intake = TASK_RULES[TaskKind.INTAKE_REVIEW]
    with pytest.raises(ValueError, match=r"^data\.items: must be a list of at most 20"):
        intake.check_data("intake_review", "return", {"items": ["x"] * 21})
    with pytest.raises(ValueError, match=r"^data\.items\[1\]: must be text"):
        intake.check_data("intake_review", "return", {"items": ["x", 3]})


def test_recorded_decisions_with_extra_keys_still_parse_in_the_workflows() -> None:
    """Validators never run on replay; the workflows' own parse stays lenient, so a decision
    recorded before the data was typed (with a key now refused) replays as it ran."""
    rule = TASK_RULES[TaskKind.RISK_REVIEW]
    parsed = rule.parse_data("reject", {"reason_codes": ["DTI_HIGH"], "old_key": 1})
    assert parsed.reason_codes == ("DTI_HIGH",)
    with pytest.raises(ValueError, match="old_key"):
        rule.check_data("risk_review", "reject", {"reason_codes": ["DTI_HIGH"], "old_key": 1})
