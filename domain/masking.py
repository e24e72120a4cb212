"""Masking of personal data for documents and for roles that see PII masked (customer service)."""

from __future__ import annotations


def mask_tail(value: str, *, keep_head: int, keep_tail: int) -> str:
    if len(value) <= keep_head + keep_tail:
        return "*" * len(value)
    return value[:keep_head] + "*" * (len(value) - keep_head - keep_tail) + value[-keep_tail:]


def mask_id_number(id_number: str) -> str:
    """110101********1234: region code and the last four kept."""
    return mask_tail(id_number, keep_head=6, keep_tail=4)


def mask_phone(phone: str) -> str:
    """138****5678."""
    return mask_tail(phone, keep_head=3, keep_tail=4)


def mask_bank_card(card: str) -> str:
    """6222 **** 1234 style: the issuer prefix and the last four kept."""
    return mask_tail(card, keep_head=4, keep_tail=4)


def mask_name(name: str) -> str:
    """张** : the family name kept."""
    return name[:1] + "*" * (len(name) - 1) if name else name
