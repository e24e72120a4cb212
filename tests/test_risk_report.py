"""Tests for the risk report (风险评估报告): HTML from real intake and scorecard results, and two
real PDF renders read back with pypdf."""

from __future__ import annotations

import dataclasses
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from pypdf import PdfReader

from activities.rendering import RiskReportData, render_risk_report_html, render_risk_report_pdf
from domain.bureau import BureauReport, OpenLoan
from domain.intake import IntakeFacts, knock_outs, purpose_category, run_checks
from domain.masking import mask_id_number, mask_name, mask_phone
from domain.scorecard import SCORECARD_V1, ScoreInputs, score

FULL_ID = "110101199005011234"
FULL_PHONE = "13812345678"
PREPARED = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)

# Worked example: 50,000.00 over 12 months (largest installment 4,442.44), income 12,000.00, one
# open bank loan paying 1,500.00 a month. DTI (1,500 + 4,442.44) / 12,000 = 49.52 % → 45 points;
# income 40, employment 4 y 30, age 36 35, one delinquency 45, 3 enquiries 25, 1 other platform
# 30, home improvement 25; 400 + 275 = 675 → grade B (PD 2.16 %), approve. Costliest bands:
# DTI_ELEVATED (35), DELINQ_ONE (35), ENQUIRIES_3_5 (15), INCOME_MIDDLE (10).


def _bureau() -> BureauReport:
    return BureauReport(
        report_id="BR-20261128-0001",
        reported_at=datetime(2026, 11, 28, 9, 0, tzinfo=UTC),
        overdue_count_24m=1,
        overdue_amount=Decimal("0.00"),
        max_days_past_due_24m=15,
        months_since_last_delinquency=8,
        enquiries_6m=3,
        open_loans=(OpenLoan("bank", Decimal("30000.00"), Decimal("1500.00")),),
        other_platform_loans=1,
        total_monthly_payments=Decimal("1500.00"),
    )


def _data(purpose: str, bureau: BureauReport | None, status: str) -> RiskReportData:
    amount, income = Decimal("50000.00"), Decimal("12000.00")
    facts = IntakeFacts(
        application_date=date(2026, 11, 28),
        birth_date=date(1990, 5, 1),
        amount=amount,
        monthly_income=income,
        purpose=purpose,
        document_kinds=("id_card_front", "id_card_back", "income_proof"),
        outstanding_elsewhere=(
            sum((loan.balance for loan in bureau.open_loans), Decimal("0.00")) if bureau else None
        ),
    )
    checks = run_checks(facts)
    result = score(
        ScoreInputs(
            monthly_income=income,
            monthly_debt_payments=bureau.total_monthly_payments if bureau else Decimal("0.00"),
            new_monthly_payment=Decimal("4442.44"),
            requested_amount=amount,
            employment_years=4,
            age=36,
            delinquencies_24m=bureau.overdue_count_24m if bureau else 0,
            max_days_past_due_24m=bureau.max_days_past_due_24m if bureau else 0,
            enquiries_6m=bureau.enquiries_6m if bureau else 0,
            other_platform_loans=bureau.other_platform_loans if bureau else 0,
            purpose_category=purpose_category(purpose),
            intake_knockouts=tuple(c.code for c in knock_outs(checks)),
        ),
        SCORECARD_V1,
    )
    return RiskReportData(
        application_no="AP-20261120-004567",
        prepared_at=PREPARED,
        borrower_name=mask_name("张三丰"),
        id_number=mask_id_number(FULL_ID),
        phone=mask_phone(FULL_PHONE),
        monthly_income=income,
        amount=amount,
        term_months=12,
        purpose=purpose,
        repayment_source="借款人工资收入",
        checks=checks,
        bureau_status=status,  # type: ignore[arg-type]
        bureau=bureau,
        score=result,
        approval_note="风控经理审批权限内",
        scorecard_version=SCORECARD_V1.version,
    )


@pytest.fixture(scope="module")
def data() -> RiskReportData:
    return _data("个人日常消费（装修）", _bureau(), "found")


@pytest.fixture(scope="module")
def declined() -> RiskReportData:
    """No bureau report (the enquiry failed) and a prohibited purpose: a knock-out."""
    return _data("炒股", None, "unavailable")


def _pdf_text(pdf: bytes) -> str:
    assert pdf.startswith(b"%PDF-")
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def test_worked_example_scores_as_documented(data: RiskReportData) -> None:
    assert data.score.score == 675
    assert data.score.grade == "B"
    assert data.score.top_reasons == (
        "DTI_ELEVATED",
        "DELINQ_ONE",
        "ENQUIRIES_3_5",
        "INCOME_MIDDLE",
    )


def test_html_has_sections_figures_and_masked_identifiers(data: RiskReportData) -> None:
    html = render_risk_report_html(data)
    for label in (
        "风险评估报告",
        "借款人概况",
        "自动核查",
        "征信摘要",
        "评分明细",
        "拒绝/关注原因代码",
        "建议",
        "审批权限",
    ):
        assert label in html, label
    assert "AP-20261120-004567" in html
    assert "2026年11月28日 09:30" in html
    assert "50,000.00" in html and "12,000.00" in html
    assert "通过" in html and "不通过" not in html
    assert "建议批准" in html
    assert "总分：675" in html and "等级：B" in html and "2.1600%" in html
    assert "49.5200%" in html  # DTI value of the dti attribute
    assert "DTI_ELEVATED" in html and "借款后负债收入比 35%–50%" in html
    # The checks and the bands read in Chinese, like the rest of the report.
    assert "申请日 2026-11-28 年满 36 周岁" in html and "必备材料齐全" in html
    assert "years on" not in html and "after this loan" not in html
    assert "BR-20261128-0001" in html and "30,000.00" in html and "1,500.00" in html
    assert "银行" in html
    assert "风控经理审批权限内" in html
    assert "评分卡版本：v1" in html
    assert "110101********1234" in html and "138****5678" in html and "张**" in html
    assert FULL_ID not in html and FULL_PHONE not in html and "张三丰" not in html
    assert 'class="ko"' not in html


def test_html_states_no_record_plainly(data: RiskReportData) -> None:
    html = render_risk_report_html(
        dataclasses.replace(data, bureau_status="no_record", bureau=None)
    )
    assert "征信机构无该借款人的信用记录" in html
    assert "BR-20261128-0001" not in html


def test_report_data_refuses_inconsistent_bureau(data: RiskReportData) -> None:
    with pytest.raises(ValueError, match="bureau"):
        dataclasses.replace(data, bureau_status="unavailable")
    with pytest.raises(ValueError, match="bureau"):
        dataclasses.replace(data, bureau=None)
    with pytest.raises(ValueError, match="scorecard_version"):
        dataclasses.replace(data, scorecard_version=2)


def test_html_without_bureau_highlights_knock_out(declined: RiskReportData) -> None:
    html = render_risk_report_html(declined)
    assert "征信报告不可得" in html
    assert "关注" in html  # borrowing caps: borrowing elsewhere unknown
    assert "不通过" in html
    assert "建议拒绝" in html
    assert 'class="ko"' in html
    assert "KO_PROHIBITED_PURPOSE" in html and "禁止的借款用途" in html


def test_pdf_text(data: RiskReportData) -> None:
    text = _pdf_text(render_risk_report_pdf(data))
    assert "风险评估报告" in text
    assert "AP-20261120-004567" in text
    assert "等级：B" in text
    assert "建议批准" in text
    assert "DTI_ELEVATED" in text
    assert "110101********1234" in text
    assert FULL_ID not in text


def test_pdf_text_without_bureau(declined: RiskReportData) -> None:
    text = _pdf_text(render_risk_report_pdf(declined))
    assert "AP-20261120-004567" in text
    assert "征信报告不可得" in text
    assert "建议拒绝" in text
    assert "KO_PROHIBITED_PURPOSE" in text
    assert "110101********1234" in text
