"""Document rendering: Jinja2 templates from ``templates/`` to HTML and, through WeasyPrint, PDF.

The PDF functions block (about 2 s here, mostly font subsetting); run them in a thread.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from weasyprint import HTML, URLFetcher

from domain.bureau import BureauReport
from domain.intake import CheckResult, Outcome
from domain.money import fen_to_int, format_rate, int_to_fen
from domain.numerals import amount_in_capitals
from domain.schedule import RepaymentMethod
from domain.scorecard import INFINITE_DTI, AttributeScore, Recommendation, ScoreResult

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
CONTRACT_TEMPLATE = "contract.html"
RISK_REPORT_TEMPLATE = "risk_report.html"


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


CONTRACT_TEMPLATES = {"zh-CN": CONTRACT_TEMPLATE, "en": "contract.en.html"}

METHOD_LABELS: dict[str, dict[RepaymentMethod, str]] = {
    "zh-CN": {
        RepaymentMethod.EQUAL_INSTALLMENT: "等额本息",
        RepaymentMethod.EQUAL_PRINCIPAL: "等额本金",
        RepaymentMethod.INTEREST_ONLY: "先息后本",
        RepaymentMethod.BULLET: "到期一次还本付息",
    },
    "en": {
        RepaymentMethod.EQUAL_INSTALLMENT: "equal installments (level payment)",
        RepaymentMethod.EQUAL_PRINCIPAL: "equal principal",
        RepaymentMethod.INTEREST_ONLY: "interest monthly, principal at maturity",
        RepaymentMethod.BULLET: "principal and interest at maturity",
    },
}

# The prohibited uses of the funds printed in every contract (domain.intake's categories).
PROHIBITED_USE_LABELS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "securities": "股票、债券等证券投资及配资",
        "futures": "期货及金融衍生产品交易",
        "crypto": "虚拟货币相关交易",
        "property_down_payment": "购房及支付购房首付款",
        "gambling": "赌博",
        "unlawful": "法律法规禁止的其他用途",
    },
    "en": {
        "securities": "investing in stocks, bonds or other securities, or margin financing",
        "futures": "trading futures or financial derivatives",
        "crypto": "trading virtual currencies",
        "property_down_payment": "buying property or paying a property down payment",
        "gambling": "gambling",
        "unlawful": "any other use prohibited by law",
    },
}


@dataclass(frozen=True)
class Lender:
    """The lender as documents name it (from settings)."""

    name: str
    credit_code: str
    address: str
    complaint_phone: str


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
    """Everything the loan contract (借款合同) prints; every figure comes from the objects the
    ledger uses (the offer's terms, their schedule, the loan's policy).

    Rates are fractions (0.12 for 12 %); ``apr`` is the simple annualized IRR and
    ``apr_compound`` its compounded form. Installment fees include the upfront fee on the
    installment it falls due with, so ``total_payment`` (the sum of the installment payments)
    is everything the borrower pays on schedule. ``penalty_annual_rate`` is the penalty rate the
    ledger charges (``domain.penalty.penalty_annual_rate``: the contract rate × the multiple,
    capped at ``rate_cap``); the day rate is it ÷ ``penalty_day_basis``.

    Identifiers: a contract identifies its parties, so the borrower's full name and resident
    identity number are printed; the phone and the bank card are masked (the payout card is
    the one on record for the application, shown by its last four digits).
    """

    contract_no: str
    application_no: str
    contract_date: date
    lender: Lender
    borrower_name: str
    borrower_id_number: str
    borrower_phone_masked: str
    bank_card_masked: str
    principal: Decimal
    annual_rate: Decimal
    apr: Decimal
    apr_compound: Decimal
    term_months: int
    method: RepaymentMethod
    purpose: str
    repayment_source: str
    upfront_fee: Decimal
    monthly_fee: Decimal
    total_interest: Decimal
    total_fees: Decimal
    total_payment: Decimal
    penalty_multiple: Decimal
    penalty_annual_rate: Decimal
    rate_cap: Decimal
    installments: tuple[ContractInstallmentRow, ...]
    penalty_grace_days: int = 0
    penalty_day_basis: int = 360
    prepayment_fee_rate: Decimal = Decimal("0")
    version: int = 1
    language: str = "zh-CN"
    # Loans priced before fee-not-deducted-v1 only: the upfront fee taken out of the payout.
    upfront_fee_deducted: Decimal = Decimal("0")

    def __post_init__(self) -> None:
        # A contract whose figures do not add up must never be printed.
        if self.language not in CONTRACT_TEMPLATES:
            raise ValueError(f"language: one of {', '.join(CONTRACT_TEMPLATES)}")
        rows = self.installments
        if not rows or [r.number for r in rows] != list(range(1, len(rows) + 1)):
            raise ValueError("installments must be numbered 1..n")
        if self.method is not RepaymentMethod.BULLET and len(rows) != self.term_months:
            raise ValueError("installments must be numbered 1..term_months")
        for r in rows:
            if r.payment != r.principal + r.interest + r.fee:
                raise ValueError(f"installment {r.number}: payment != principal + interest + fee")
        if sum(r.principal for r in rows) != self.principal:
            raise ValueError("installment principal does not sum to the loan principal")
        if sum(r.interest for r in rows) != self.total_interest:
            raise ValueError("installment interest does not sum to total_interest")
        if sum(r.fee for r in rows) != self.total_fees:
            raise ValueError("installment fees do not sum to total_fees")
        if sum(r.payment for r in rows) != self.total_payment:
            raise ValueError("installment payments do not sum to total_payment")
        if rows[0].fee < self.upfront_fee:
            raise ValueError("the upfront fee falls due with installment 1")
        if self.penalty_annual_rate > self.rate_cap:
            raise ValueError("penalty_annual_rate: above the rate cap the ledger applies")

    @property
    def upfront_fee_due_date(self) -> date:
        return self.installments[0].due_date

    @property
    def penalty_day_rate(self) -> Decimal:
        return self.penalty_annual_rate / self.penalty_day_basis

    @property
    def penalty_capped(self) -> bool:
        return self.penalty_annual_rate < self.annual_rate * self.penalty_multiple

    @property
    def method_label(self) -> str:
        return METHOD_LABELS[self.language][self.method]

    @property
    def prohibited_uses(self) -> tuple[str, ...]:
        return tuple(PROHIBITED_USE_LABELS[self.language].values())


def render_html(template_name: str, context: Mapping[str, Any]) -> str:
    """Render a template from ``templates/`` with autoescaping; undefined names raise."""
    return environment.get_template(template_name).render(context)


def render_pdf(template_name: str, context: Mapping[str, Any]) -> bytes:
    """Render a template to PDF bytes; relative URLs resolve against ``templates/``.

    Only local files and data URLs are fetched, so a rendering never reaches the network.
    """
    return html_to_pdf(render_html(template_name, context))


def html_to_pdf(html: str) -> bytes:
    """PDF bytes of rendered HTML (what ``render_pdf`` does after the template)."""
    fetcher = URLFetcher(allowed_protocols={"file", "data"})
    document = HTML(string=html, base_url=str(TEMPLATES_DIR) + "/", url_fetcher=fetcher)
    pdf: bytes = document.write_pdf()
    return pdf


def _contract_vars(ctx: ContractContext) -> dict[str, Any]:
    # Shallow on purpose: the template reads the installment rows and the lender as objects.
    values = {f.name: getattr(ctx, f.name) for f in fields(ctx)}
    for name in (
        "upfront_fee_due_date",
        "penalty_day_rate",
        "penalty_capped",
        "method_label",
        "prohibited_uses",
    ):
        values[name] = getattr(ctx, name)
    return values


def render_contract_html(ctx: ContractContext) -> str:
    """Render the loan contract as HTML in its language (preview, and what the PDF is made from)."""
    return render_html(CONTRACT_TEMPLATES[ctx.language], _contract_vars(ctx))


def render_contract_pdf(ctx: ContractContext) -> bytes:
    """Render the loan contract as PDF bytes. Blocking: call it from a thread."""
    return html_to_pdf(render_contract_html(ctx))


# --- settlement certificate (结清证明) ---------------------------------------------------------

SETTLEMENT_CERTIFICATE_TEMPLATE = "settlement_certificate.html"


@dataclass(frozen=True)
class SettlementCertificateData:
    """Everything the settlement certificate prints: the totals paid come from the ledger
    (what was applied to each component), so principal_paid equals the principal."""

    certificate_no: str
    contract_no: str
    application_no: str
    lender: Lender
    borrower_name: str
    borrower_id_number_masked: str
    principal: Decimal
    start_date: date
    maturity_date: date
    settled_on: date
    principal_paid: Decimal
    interest_paid: Decimal
    fees_paid: Decimal
    penalty_paid: Decimal
    issued_on: date

    def __post_init__(self) -> None:
        if self.principal_paid != self.principal:
            raise ValueError("principal_paid: a settled loan has repaid its whole principal")

    @property
    def total_paid(self) -> Decimal:
        return self.principal_paid + self.interest_paid + self.fees_paid + self.penalty_paid


def render_settlement_certificate_pdf(data: SettlementCertificateData) -> bytes:
    """Render the settlement certificate as PDF bytes. Blocking: call it from a thread."""
    values = {f.name: getattr(data, f.name) for f in fields(data)}
    values["total_paid"] = data.total_paid
    return render_pdf(SETTLEMENT_CERTIFICATE_TEMPLATE, values)


# --- risk report (风险评估报告) ----------------------------------------------------------------

BureauStatus = Literal["found", "no_record", "unavailable"]

OUTCOME_LABELS: dict[Outcome, str] = {
    Outcome.PASS: "通过",
    Outcome.WARN: "关注",
    Outcome.FAIL: "不通过",
}
RECOMMENDATION_LABELS: dict[Recommendation, str] = {
    Recommendation.APPROVE: "建议批准",
    Recommendation.REVIEW: "建议复核",
    Recommendation.DECLINE: "建议拒绝",
}
CHECK_LABELS: dict[str, str] = {
    "age": "年龄",
    "documents": "申请材料",
    "purpose": "借款用途",
    "duplicate_application": "重复申请",
    "blacklist": "黑名单",
    "borrowing_caps": "借款余额上限",
    "income": "收入",
}
ATTRIBUTE_LABELS: dict[str, str] = {
    "dti": "负债收入比（含本笔）",
    "monthly_income": "月收入（元）",
    "employment_years": "工作年限（年）",
    "age": "年龄（岁）",
    "delinquencies_24m": "近24个月逾期次数",
    "enquiries_6m": "近6个月征信查询次数",
    "other_platform_loans": "其他平台借款笔数",
    "purpose_category": "借款用途类别",
}
KNOCKOUT_LABELS: dict[str, str] = {
    "KO_AGE_OUT_OF_BOUNDS": "年龄不在可借范围内",
    "KO_BLACKLIST": "黑名单",
    "KO_DTI_OVER_LIMIT": "负债收入比超限",
    "KO_CAPS_EXCEEDED": "超出借款余额上限",
    "KO_SEVERE_DELINQUENCY": "严重逾期",
    "KO_PROHIBITED_PURPOSE": "禁止的借款用途",
}
LENDER_TYPE_LABELS: dict[str, str] = {
    "bank": "银行",
    "consumer_finance": "消费金融公司",
    "online_platform": "网络借贷平台",
    "credit_card": "信用卡",
}


@dataclass(frozen=True)
class RiskReportData:
    """Everything the risk report (风险评估报告) prints; identifiers arrive already masked.

    ``bureau`` is the report when ``bureau_status`` is "found" and None otherwise ("no_record":
    the bureau has no file on the borrower; "unavailable": the enquiry failed).
    ``approval_note`` states the approval authority in words, e.g. "风控经理审批权限内".
    """

    application_no: str
    prepared_at: datetime
    borrower_name: str
    id_number: str
    phone: str
    monthly_income: Decimal
    amount: Decimal
    term_months: int
    purpose: str
    repayment_source: str
    checks: tuple[CheckResult, ...]
    bureau_status: BureauStatus
    bureau: BureauReport | None
    score: ScoreResult
    approval_note: str
    scorecard_version: int

    def __post_init__(self) -> None:
        if self.bureau_status not in ("found", "no_record", "unavailable"):
            raise ValueError(f"bureau_status: unknown status {self.bureau_status!r}")
        if (self.bureau_status == "found") != (self.bureau is not None):
            raise ValueError("bureau: a report goes with bureau_status 'found' and only with it")
        if self.score.card_version != self.scorecard_version:
            raise ValueError("scorecard_version: differs from the card version of the score")


def _attribute_value(a: AttributeScore) -> str:
    """An attribute's scored value as the report prints it."""
    if a.value is None:
        return "未填写"
    # A stored result comes back from JSON with its decimals as strings: read them again.
    if a.attribute == "dti":
        dti = Decimal(str(a.value))
        return "无收入（无穷大）" if dti == INFINITE_DTI else rate_pct(dti)
    if a.attribute == "monthly_income":
        return money(Decimal(str(a.value)))
    return str(a.value)


def _risk_report_vars(data: RiskReportData) -> dict[str, Any]:
    score = data.score
    knockout_codes = {k.code for k in score.knockouts}
    band_labels = {a.reason: a.label for a in score.attributes}
    knockout_messages = {k.code: k.message for k in score.knockouts}
    checks = [
        {
            "name": CHECK_LABELS.get(c.code, c.code),
            "code": c.code,
            "outcome": OUTCOME_LABELS[c.outcome],
            "outcome_class": c.outcome.value,
            "detail": c.detail,
            "knock_out": c.knock_out and c.outcome == Outcome.FAIL,
        }
        for c in data.checks
    ]
    attributes = [
        {
            "name": ATTRIBUTE_LABELS.get(a.attribute, a.attribute),
            "value": _attribute_value(a),
            "points": a.points,
            "reason": a.reason,
            "label": a.label,
            "shortfall": a.shortfall,
        }
        for a in score.attributes
    ]
    reasons = [
        {
            "code": code,
            "knock_out": code in knockout_codes,
            "label": (
                f"{KNOCKOUT_LABELS.get(code, code)}：{knockout_messages[code]}"
                if code in knockout_codes
                else band_labels.get(code, "")
            ),
        }
        for code in score.top_reasons
    ]
    open_loans = (
        [
            {
                "lender": LENDER_TYPE_LABELS.get(loan.lender_type, loan.lender_type),
                "balance": loan.balance,
                "monthly_payment": loan.monthly_payment,
            }
            for loan in data.bureau.open_loans
        ]
        if data.bureau is not None
        else []
    )
    return {
        **{f.name: getattr(data, f.name) for f in fields(data)},
        "prepared_time": data.prepared_at.strftime("%H:%M"),
        "check_rows": checks,
        "attribute_rows": attributes,
        "reason_rows": reasons,
        "knockouts": [
            {"code": k.code, "label": KNOCKOUT_LABELS.get(k.code, k.code), "message": k.message}
            for k in score.knockouts
        ],
        "open_loan_rows": open_loans,
        "recommendation_label": RECOMMENDATION_LABELS[score.recommendation],
        "recommendation_class": score.recommendation.value,
        "dti_text": ("无收入（无穷大）" if score.dti == INFINITE_DTI else rate_pct(score.dti)),
    }


def render_risk_report_html(data: RiskReportData) -> str:
    """Render the risk report as HTML (preview, and what the PDF is made from)."""
    return render_html(RISK_REPORT_TEMPLATE, _risk_report_vars(data))


def render_risk_report_pdf(data: RiskReportData) -> bytes:
    """Render the risk report as PDF bytes. Blocking: call it from a thread."""
    return render_pdf(RISK_REPORT_TEMPLATE, _risk_report_vars(data))


def pdf_sha256(pdf: bytes) -> str:
    """Hex SHA-256 of a rendered document, for the audit trail and tamper checks."""
    return hashlib.sha256(pdf).hexdigest()
