"""scrub_pii: the borrower's identifiers masked wherever they appear in a JSON-like value."""

from __future__ import annotations

from domain.masking import mask_bank_card, mask_id_number, mask_name, mask_phone, scrub_pii

PII = {
    "name": "张三丰",
    "id_number": "110105198805120026",
    "phone": "13800138000",
    "bank_card": "6222020200112233446",
}


def test_identifiers_are_masked_in_nested_strings_and_by_key() -> None:
    value = {
        "signer_name": "张三丰",
        "product": {"name": "小微经营贷", "code": "SMB"},
        "lines": [f"付款至 {PII['bank_card']}", f"{PII['name']} / {PII['id_number']}"],
        "phone": "13900139000",  # by key, even when it is not the borrower's own
        "amount": 50000,
    }
    out = scrub_pii(value, PII)
    assert out == {
        "signer_name": mask_name("张三丰"),
        "product": {"name": "小微经营贷", "code": "SMB"},
        "lines": [
            f"付款至 {mask_bank_card(PII['bank_card'])}",
            f"{mask_name(PII['name'])} / {mask_id_number(PII['id_number'])}",
        ],
        "phone": mask_phone("13900139000"),
        "amount": 50000,
    }
    text = str(out)
    assert all(raw not in text for raw in PII.values())


def test_without_identifiers_only_the_keys_are_masked() -> None:
    assert scrub_pii({"installment": 2, "mobile": "13800138000"}, {}) == {
        "installment": 2,
        "mobile": "138****8000",
    }
