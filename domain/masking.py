"""Masking of personal data for documents and for roles that see PII masked (customer service)."""

from __future__ import annotations

# What retention leaves in place of a destroyed value (``loanops.retention``): shown as it is,
# never masked (there is nothing left to hide).
TOMBSTONE = "[destroyed]"


def is_tombstone(value: str | None) -> bool:
    return value is not None and value.startswith(TOMBSTONE)


def mask_tail(value: str, *, keep_head: int, keep_tail: int) -> str:
    if is_tombstone(value):
        return value
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
    if is_tombstone(name):
        return name
    return name[:1] + "*" * (len(name) - 1) if name else name


# Keys whose values are personal data wherever they appear (audit details, task contexts).
# (Not a bare "name": products and documents have names too; the borrower's own name is found
# by value.)
_MASK_BY_KEY = {
    "borrower_name": mask_name,
    "signer_name": mask_name,
    "id_number": mask_id_number,
    "phone": mask_phone,
    "mobile": mask_phone,
    "bank_card": mask_bank_card,
    "card": mask_bank_card,
}


def scrub_pii(value: object, identifiers: dict[str, str]) -> object:
    """``value`` (a JSON-like structure: dicts, lists, strings) with personal data masked, for
    roles that see PII masked: the values of the keys above, and every occurrence in any string
    of the borrower's own identifiers (``identifiers``: field → value, field one of
    name / id_number / phone / bank_card)."""
    maskers = {**_MASK_BY_KEY, "name": mask_name}
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for k, v in value.items():
            masker = _MASK_BY_KEY.get(str(k))
            out[k] = masker(v) if masker and isinstance(v, str) else scrub_pii(v, identifiers)
        return out
    if isinstance(value, list):
        return [scrub_pii(v, identifiers) for v in value]
    if isinstance(value, str):
        # Longest first: a name inside another identifier is not masked twice.
        for field, raw in sorted(identifiers.items(), key=lambda kv: -len(kv[1])):
            masker = maskers.get(field)
            if raw and masker and raw in value:
                value = value.replace(raw, masker(raw))
        return value
    return value
