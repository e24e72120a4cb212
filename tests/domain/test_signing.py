"""The e-signature's rules: disclosure items by id, the seal's refusal data, the seal's role."""

from __future__ import annotations

import pytest

from domain.lifecycle import Role
from domain.permissions import MATRIX, Action, sole_role
from domain.signing import DISCLOSURE_IDS, DISCLOSURE_ITEMS, unconfirmed, unknown_confirmations
from domain.tasks import SealRefusalData


def test_disclosure_items_have_unique_ids_and_both_languages() -> None:
    assert len(set(DISCLOSURE_IDS)) == len(DISCLOSURE_ITEMS) >= 4
    assert all(item.text_zh and item.text_en for item in DISCLOSURE_ITEMS)


def test_unconfirmed_names_each_missing_item_in_order() -> None:
    assert unconfirmed(list(DISCLOSURE_IDS)) == []
    assert unconfirmed([]) == list(DISCLOSURE_IDS)
    assert unconfirmed([i for i in DISCLOSURE_IDS if i not in ("cost", "penalty")]) == [
        "cost",
        "penalty",
    ]
    assert unknown_confirmations([*DISCLOSURE_IDS, "all", "cost"]) == ["all"]


def test_a_refused_seal_needs_a_reason() -> None:
    assert SealRefusalData.parse({"reason": "  身份存疑 "}).reason == "身份存疑"
    for data in (None, {}, {"reason": ""}, {"reason": "   "}, {"reason": 3}):
        with pytest.raises(ValueError, match=r"^data\.reason: "):
            SealRefusalData.parse(data)
    with pytest.raises(ValueError, match="500"):
        SealRefusalData.parse({"reason": "x" * 501})


def test_the_seal_role_is_the_one_the_matrix_names(monkeypatch: pytest.MonkeyPatch) -> None:
    assert sole_role(Action.SEAL_CONTRACT) == Role.DEPARTMENT_MANAGER
    monkeypatch.setitem(
        MATRIX,
        Action.SEAL_CONTRACT,
        frozenset({Role.DEPARTMENT_MANAGER.value, Role.RISK_MANAGER.value}),
    )
    with pytest.raises(ValueError, match="exactly one staff role"):
        sole_role(Action.SEAL_CONTRACT)
