"""Tests for contract rendering: filters, HTML escaping, and a real PDF with embedded CJK font."""

from __future__ import annotations

import dataclasses
import io
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from jinja2 import UndefinedError
from pypdf import PdfReader
from pypdf.generic import DictionaryObject

from activities.rendering import (
    ContractContext,
    ContractInstallmentRow,
    money,
    pdf_sha256,
    rate_pct,
    render_contract_html,
    render_contract_pdf,
    render_html,
    zh_date,
)

# A 50,000.00 loan at 12 % a year, 12 equal monthly installments (等额本息) of 4,442.44
# (the last 4,442.43), plus 20.00 per installment and 500.00 upfront. Monthly IRR of
# 49,500 received against 12 payments of 4,462.44/4,462.43 is 1.2309163 %:
# APR 12 × r = 14.7710 %, compound (1 + r)^12 − 1 = 15.8132 %.
_PRINCIPAL_INTEREST = [
    ("3942.44", "500.00"),
    ("3981.86", "460.58"),
    ("4021.68", "420.76"),
    ("4061.90", "380.54"),
    ("4102.52", "339.92"),
    ("4143.54", "298.90"),
    ("4184.98", "257.46"),
    ("4226.83", "215.61"),
    ("4269.10", "173.34"),
    ("4311.79", "130.65"),
    ("4354.91", "87.53"),
    ("4398.45", "43.98"),
]
_FEE = Decimal("20.00")


def _installments() -> tuple[ContractInstallmentRow, ...]:
    rows = []
    for number, (principal, interest) in enumerate(_PRINCIPAL_INTEREST, start=1):
        p, i = Decimal(principal), Decimal(interest)
        due = date(2026 + (11 + number - 1) // 12, (11 + number - 1) % 12 + 1, 28)
        rows.append(ContractInstallmentRow(number, due, p, i, _FEE, p + i + _FEE))
    return tuple(rows)


def sample_contract() -> ContractContext:
    """The contract every test here renders; also used to time a render by hand."""
    return ContractContext(
        contract_no="LC-20261128-000123",
        application_no="AP-20261120-004567",
        borrower_name="张三丰",
        borrower_id_number_masked="110101********1234",
        borrower_phone_masked="138****5678",
        bank_card_masked="6222 **** **** 4321",
        principal=Decimal("50000.00"),
        annual_rate=Decimal("0.12"),
        apr=Decimal("0.147709954927"),
        apr_compound=Decimal("0.158131874460"),
        term_months=12,
        method_label="等额本息",
        purpose="个人日常消费（装修）",
        repayment_source="借款人工资收入",
        upfront_fee=Decimal("500.00"),
        monthly_fee=_FEE,
        total_interest=Decimal("3309.27"),
        total_payment=Decimal("53549.27"),
        penalty_multiple=Decimal("1.5"),
        contract_date=date(2026, 11, 28),
        lender_name="示例小额贷款有限公司",
        installments=_installments(),
    )


@pytest.fixture(scope="module")
def ctx() -> ContractContext:
    return sample_contract()


@pytest.fixture(scope="module")
def pdf(ctx: ContractContext) -> bytes:
    return render_contract_pdf(ctx)


@pytest.fixture(scope="module")
def reader(pdf: bytes) -> PdfReader:
    return PdfReader(io.BytesIO(pdf))


@pytest.fixture(scope="module")
def text(reader: PdfReader) -> str:
    return "\n".join(page.extract_text() for page in reader.pages)


# --- filters -------------------------------------------------------------------------------


def test_money_filter() -> None:
    assert money(Decimal("12345.67")) == "12,345.67"
    assert money(Decimal("1000000")) == "1,000,000.00"
    assert money(Decimal("0.5")) == "0.50"
    assert money(Decimal("0")) == "0.00"


def test_money_filter_refuses_floats_and_sub_fen() -> None:
    with pytest.raises(TypeError):
        money(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        money(Decimal("1.005"))


def test_rate_pct_filter() -> None:
    assert rate_pct(Decimal("0.123456")) == "12.3456%"
    assert rate_pct(Decimal("0.12")) == "12.0000%"
    assert rate_pct(Decimal("0.147709954927")) == "14.7710%"
    assert rate_pct(Decimal("0.0005")) == "0.0500%"


def test_zh_date_filter() -> None:
    assert zh_date(date(2026, 11, 28)) == "2026年11月28日"
    assert zh_date(date(2027, 1, 5)) == "2027年1月5日"


# --- context validation --------------------------------------------------------------------


def test_context_refuses_schedule_that_does_not_add_up(ctx: ContractContext) -> None:
    with pytest.raises(ValueError, match="total_payment"):
        dataclasses.replace(ctx, total_payment=Decimal("53549.28"))
    with pytest.raises(ValueError, match="principal"):
        dataclasses.replace(ctx, principal=Decimal("60000.00"))
    with pytest.raises(ValueError, match=r"1\.\.term_months"):
        dataclasses.replace(ctx, term_months=11)
    bad_row = dataclasses.replace(ctx.installments[0], payment=Decimal("4462.45"))
    with pytest.raises(ValueError, match="installment 1"):
        dataclasses.replace(ctx, installments=(bad_row, *ctx.installments[1:]))


# --- HTML ----------------------------------------------------------------------------------


def test_html_escapes_context_values(ctx: ContractContext) -> None:
    evil = dataclasses.replace(ctx, borrower_name="<script>alert(1)</script>", purpose="A & B")
    html = render_contract_html(evil)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "A &amp; B" in html


def test_html_missing_variable_raises() -> None:
    context: dict[str, Any] = {"contract_no": "X"}
    with pytest.raises(UndefinedError):
        render_html("contract.html", context)


# --- PDF -----------------------------------------------------------------------------------


def test_pdf_is_a_pdf_of_two_to_four_pages(pdf: bytes, reader: PdfReader) -> None:
    assert pdf.startswith(b"%PDF-")
    assert 2 <= len(reader.pages) <= 4


def test_pdf_text_has_contract_terms(ctx: ContractContext, text: str) -> None:
    assert "张三丰" in text
    assert "个人借款合同" in text
    assert "LC-20261128-000123" in text
    assert "50,000.00" in text
    assert "伍万元整" in text
    assert "14.7710%" in text  # APR, simple
    assert "15.8132%" in text  # APR, compound
    assert "12.0000%" in text  # nominal annual rate
    assert "0.0500%" in text  # penalty per day: 12 % × 1.5 ÷ 360
    assert "示例小额贷款有限公司" in text
    assert "风险提示" in text


def test_pdf_text_has_schedule_rows(text: str) -> None:
    assert "2026年12月28日" in text  # installment 1
    assert "4,462.44" in text  # payment of installments 1..11
    assert "2027年11月28日" in text  # installment 12
    assert "4,462.43" in text  # last payment
    assert "3,942.44" in text and "4,398.45" in text  # principal of first and last rows
    assert "53,549.27" in text  # total


def test_pdf_has_page_numbers(reader: PdfReader, text: str) -> None:
    total = len(reader.pages)
    for page in range(1, total + 1):
        assert f"第 {page} 页 / 共 {total} 页" in text


def _resolved(obj: Any) -> DictionaryObject:
    value = obj.get_object()
    assert isinstance(value, DictionaryObject)
    return value


def _font_names_and_files(reader: PdfReader) -> tuple[set[str], bool]:
    names: set[str] = set()
    all_embedded = True
    for page in reader.pages:
        fonts = _resolved(_resolved(page["/Resources"])["/Font"])
        for ref in fonts.values():
            font = _resolved(ref)
            names.add(str(font["/BaseFont"]))
            descendants = font.get("/DescendantFonts")
            target = _resolved(descendants.get_object()[0]) if descendants else font
            descriptor = _resolved(target["/FontDescriptor"])
            if not any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3")):
                all_embedded = False
    return names, all_embedded


def test_pdf_embeds_the_cjk_font(reader: PdfReader, text: str) -> None:
    names, all_embedded = _font_names_and_files(reader)
    assert any("WenQuanYi" in name for name in names), names
    assert all_embedded, names
    # Extracted Chinese text is the evidence that glyphs were drawn, not missing-glyph boxes.
    assert "借款人" in text and "张三丰" in text


def test_pdf_sha256_is_the_digest_of_the_bytes(pdf: bytes) -> None:
    # Not a re-render: fontTools stamps the subset font with the current time, so two renders
    # differ unless SOURCE_DATE_EPOCH is set; the hash is of the bytes actually stored.
    assert pdf_sha256(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert pdf_sha256(pdf) == pdf_sha256(bytes(pdf))
    assert len(pdf_sha256(pdf)) == 64


def test_html_is_deterministic(ctx: ContractContext) -> None:
    assert render_contract_html(ctx) == render_contract_html(sample_contract())
