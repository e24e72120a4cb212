"""Document rendering: Jinja2 templates from ``templates/`` to HTML and, through WeasyPrint, PDF.

The PDF functions block (about 2 s here, mostly font subsetting); run them in a thread.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from weasyprint import HTML, URLFetcher

from domain.money import fen_to_int, format_rate, int_to_fen
from domain.numerals import amount_in_capitals

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
CONTRACT_TEMPLATE = "contract.html"


def money(value: Decimal) -> str:
    """Format yuan with thousands separators and two decimals: 12345.67 → "12,345.67".

    Amounts reach documents already rounded to the fen; one with sub-fen digits (or a float)
    is refused by ``domain.money`` rather than rounded a second time here.
    """
    return f"{int_to_fen(fen_to_int(value)):,}"


def rate_pct(value: Decimal) -> str:
    """Format a rate given as a fraction as a percentage: 0.123456 → "12.3456%".

    Rounded by ``domain.money.format_rate`` (six places of the fraction, half-up).
    """
    return f"{Decimal(format_rate(value)).scaleb(2):f}%"


def zh_date(value: date) -> str:
    """Format a date the way contracts write it: 2026-11-28 → "2026年11月28日"."""
    return f"{value.year}年{value.month}月{value.day}日"


def _build_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html", "htm", "xml"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = money
    env.filters["capitals"] = amount_in_capitals
    env.filters["rate_pct"] = rate_pct
    env.filters["zh_date"] = zh_date
    return env


environment = _build_environment()


@dataclass(frozen=True)
class ContractInstallmentRow:
    """One row of the repayment schedule printed in the contract."""

    number: int
    due_date: date
    principal: Decimal
    interest: Decimal
    fee: Decimal
    payment: Decimal


@dataclass(frozen=True)
class ContractContext:
    """Everything the loan contract (借款合同) template prints.

    Rates are fractions (0.12 for 12 %); ``apr`` is the simple annualized IRR and
    ``apr_compound`` its compounded form. ``total_payment`` is the sum of the installment
    payments (principal, interest and per-installment fees); the upfront fee is separate.
    """

    contract_no: str
    application_no: str
    borrower_name: str
    borrower_id_number_masked: str
    borrower_phone_masked: str
    bank_card_masked: str
    principal: Decimal
    annual_rate: Decimal
    apr: Decimal
    apr_compound: Decimal
    term_months: int
    method_label: str
    purpose: str
    repayment_source: str
    upfront_fee: Decimal
    monthly_fee: Decimal
    total_interest: Decimal
    total_payment: Decimal
    penalty_multiple: Decimal
    contract_date: date
    lender_name: str
    installments: tuple[ContractInstallmentRow, ...]

    def __post_init__(self) -> None:
        # A contract whose schedule does not add up must never be printed.
        rows = self.installments
        if (
            self.term_months < 1
            or len(rows) != self.term_months
            or [r.number for r in rows] != list(range(1, self.term_months + 1))
        ):
            raise ValueError("installments must be numbered 1..term_months")
        for r in rows:
            if r.payment != r.principal + r.interest + r.fee:
                raise ValueError(f"installment {r.number}: payment != principal + interest + fee")
        if sum(r.principal for r in rows) != self.principal:
            raise ValueError("installment principal does not sum to the loan principal")
        if sum(r.interest for r in rows) != self.total_interest:
            raise ValueError("installment interest does not sum to total_interest")
        if sum(r.payment for r in rows) != self.total_payment:
            raise ValueError("installment payments do not sum to total_payment")


def render_html(template_name: str, context: Mapping[str, Any]) -> str:
    """Render a template from ``templates/`` with autoescaping; undefined names raise."""
    return environment.get_template(template_name).render(context)


def render_pdf(template_name: str, context: Mapping[str, Any]) -> bytes:
    """Render a template to PDF bytes; relative URLs resolve against ``templates/``.

    Only local files and data URLs are fetched, so a rendering never reaches the network.
    """
    html = render_html(template_name, context)
    fetcher = URLFetcher(allowed_protocols={"file", "data"})
    document = HTML(string=html, base_url=str(TEMPLATES_DIR) + "/", url_fetcher=fetcher)
    pdf: bytes = document.write_pdf()
    return pdf


def _contract_vars(ctx: ContractContext) -> dict[str, Any]:
    # Shallow on purpose: the template reads the installment rows as objects.
    return {f.name: getattr(ctx, f.name) for f in fields(ctx)}


def render_contract_html(ctx: ContractContext) -> str:
    """Render the loan contract as HTML (preview, and what the PDF is made from)."""
    return render_html(CONTRACT_TEMPLATE, _contract_vars(ctx))


def render_contract_pdf(ctx: ContractContext) -> bytes:
    """Render the loan contract as PDF bytes. Blocking: call it from a thread."""
    return render_pdf(CONTRACT_TEMPLATE, _contract_vars(ctx))


def pdf_sha256(pdf: bytes) -> str:
    """Hex SHA-256 of a rendered document, for the audit trail and tamper checks."""
    return hashlib.sha256(pdf).hexdigest()
