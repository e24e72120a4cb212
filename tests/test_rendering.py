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
    Lender,
    money,
    pdf_sha256,
    rate_pct,
    render_contract_html,
    render_contract_pdf,
    render_html,
    zh_date,
)
from domain.schedule import RepaymentMethod

# A 50,000.00 loan at 12 % a year, 12 equal monthly installments (等额本息) of 4,442.44
# (the last 4,442.43), plus 20.00 per installment and a 500.00 upfront fee due with installment 1
# (never deducted: the borrower receives 50,000.00). Monthly IRR of 50,000 received against
# 4,962.44, 10 × 4,462.44 and 4,462.43 (numpy_financial): APR 12 × r = 14.7476 %,
# compound (1 + r)^12 − 1 = 15.7864 %.
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
_UPFRONT = Decimal("500.00")
LENDER = Lender(
    name="示例小额贷款有限公司",
    credit_code="91310000MA1EXAMPLE",
    address="上海市黄浦区示例路 8 号",
    complaint_phone="400-123-4567",
)


def _installments() -> tuple[ContractInstallmentRow, ...]:
    rows = []
    for number, (principal, interest) in enumerate(_PRINCIPAL_INTEREST, start=1):
        p, i = Decimal(principal), Decimal(interest)
        fee = _FEE + (_UPFRONT if number == 1 else 0)
        due = date(2026 + (11 + number - 1) // 12, (11 + number - 1) % 12 + 1, 28)
        rows.append(ContractInstallmentRow(number, due, p, i, fee, p + i + fee))
    return tuple(rows)


def sample_contract(**changes: Any) -> ContractContext:
    """The contract every test here renders."""
    ctx = ContractContext(
        contract_no="LC-20261128-000123",
        application_no="AP-20261120-004567",
        contract_date=date(2026, 11, 28),
        lender=LENDER,
        borrower_name="张三丰",
        borrower_id_number="11010519491231002X",
        borrower_phone_masked="138****5678",
        bank_card_masked="6222 **** **** 4321",
        principal=Decimal("50000.00"),
        annual_rate=Decimal("0.12"),
        apr=Decimal("0.147475537808"),
        apr_compound=Decimal("0.157863718116"),
        term_months=12,
        method=RepaymentMethod.EQUAL_INSTALLMENT,
        purpose="个人日常消费（装修）",
        repayment_source="借款人工资收入",
        upfront_fee=_UPFRONT,
        monthly_fee=_FEE,
        total_interest=Decimal("3309.27"),
        total_fees=Decimal("740.00"),
        total_payment=Decimal("54049.27"),
        penalty_multiple=Decimal("1.5"),
        penalty_annual_rate=Decimal("0.18"),  # 12 % × 1.5, below the 24 % cap
        rate_cap=Decimal("0.24"),
        installments=_installments(),
    )
    return dataclasses.replace(ctx, **changes) if changes else ctx


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
        dataclasses.replace(ctx, total_payment=Decimal("54049.28"))
    with pytest.raises(ValueError, match="total_fees"):
        dataclasses.replace(ctx, total_fees=Decimal("240.00"))
    with pytest.raises(ValueError, match="penalty_annual_rate"):
        dataclasses.replace(ctx, penalty_annual_rate=Decimal("0.25"))
    with pytest.raises(ValueError, match="principal"):
        dataclasses.replace(ctx, principal=Decimal("60000.00"))
    with pytest.raises(ValueError, match=r"1\.\.term_months"):
        dataclasses.replace(ctx, term_months=11)
    bad_row = dataclasses.replace(ctx.installments[0], payment=Decimal("4962.45"))
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


def test_pdf_is_a_pdf_of_two_to_six_pages(pdf: bytes, reader: PdfReader) -> None:
    assert pdf.startswith(b"%PDF-")
    assert 2 <= len(reader.pages) <= 6


def test_pdf_text_has_contract_terms(ctx: ContractContext, text: str) -> None:
    assert "个人借款合同" in text
    assert "LC-20261128-000123" in text
    # Parties: the lender from settings, the borrower's full name and identity number.
    assert "示例小额贷款有限公司" in text and "91310000MA1EXAMPLE" in text
    assert "张三丰" in text and "11010519491231002X" in text
    assert "138****5678" in text and "6222 **** **** 4321" in text
    assert "50,000.00" in text
    assert "人民币伍万元整" in text
    assert "14.7476%" in text  # APR, simple
    assert "15.7864%" in text  # APR, compound
    assert "12.0000%" in text  # nominal annual rate
    assert "18.0000%" in text  # penalty a year: 12 % × 1.5 (below the cap)
    assert "0.0500%" in text  # penalty per day: 18 % ÷ 360
    assert "风险提示" in text
    assert "投诉" in text and "400-123-4567" in text  # complaint channel
    assert "个人信息" in text
    assert "提前还款不收取违约金或手续费" in text
    # Fees: the upfront fee in figures and words, due with installment 1 on its date.
    assert "一次性服务费：人民币 500.00 元（大写：人民币伍佰元整）" in text
    assert "2026年12月28日" in text
    assert "不从借款本金中扣除" in text
    assert "费用合计人民币 740.00 元" in text
    # The prohibited uses are printed.
    assert "赌博" in text and "购房" in text and "虚拟货币" in text
    assert "出借人（甲方）：示例小额贷款有限公司（盖章）" in text


def test_pdf_text_has_schedule_rows(text: str) -> None:
    assert "2026年12月28日" in text  # installment 1
    assert "4,962.44" in text  # payment of installment 1 with the upfront fee
    assert "520.00" in text  # its fee
    assert "4,462.44" in text  # payment of installments 2..11
    assert "2027年11月28日" in text  # installment 12
    assert "4,462.43" in text  # last payment
    assert "3,942.44" in text and "4,398.45" in text  # principal of first and last rows
    assert "54,049.27" in text  # total


def test_a_capped_penalty_rate_prints_the_cap_the_ledger_charges() -> None:
    capped = sample_contract(penalty_annual_rate=Decimal("0.15"), rate_cap=Decimal("0.15"))
    html = render_contract_html(capped)
    assert "15.0000%" in html  # the rate charged: the cap, not 12 % × 1.5 = 18 %
    assert "0.0417%" in html  # 15 % ÷ 360 = 0.041666…%
    assert "18.0000%" not in html
    assert "故按该上限计收" in html


def test_the_english_contract_renders_the_same_figures() -> None:
    en = sample_contract(language="en")
    pdf = render_contract_pdf(en)
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "Personal Loan Contract" in text
    assert "11010519491231002X" in text and "张三丰" in text
    assert "50,000.00" in text and "人民币伍万元整" in text
    assert "14.7476%" in text and "15.7864%" in text
    assert "18.0000%" in text and "0.0500%" in text
    assert "CNY 500.00, not deducted from the principal, due with installment 1 on 2026-12-28" in (
        " ".join(text.split())
    )
    assert "2027-11-28" in text and "54,049.27" in text
    assert "Page 1 of" in text
    with pytest.raises(ValueError, match="language"):
        sample_contract(language="fr")


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


def test_the_prepayment_terms_follow_the_product() -> None:
    free = render_contract_html(sample_contract())
    assert "提前还款不收取违约金或手续费" in free and "提前还款手续费" not in free
    charged = render_contract_html(sample_contract(prepayment_fee_rate=Decimal("0.01")))
    assert "提前还款手续费为提前偿还本金的 1.0000%" in charged
