"""Contract PDF rendering of a 36-month loan: full render-and-write against layout alone,
measured in one run.

    .venv/bin/python bench/contract_pdf.py [rounds]

The baseline is WeasyPrint's layout (``HTML.render()``) of the same contract; the ratio says how
much of a contract's cost is writing the PDF (mostly subsetting the CJK font). With Debian's
libharfbuzz-subset0 installed (scripts/bootstrap.sh does) WeasyPrint subsets with HarfBuzz; without
it, it falls back to fontTools, which is about ten times slower here.
"""

from __future__ import annotations

import logging
import statistics
import sys
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from weasyprint import HTML

from activities.contracts import contract_context
from activities.rendering import (
    TEMPLATES_DIR,
    ContractContext,
    Lender,
    render_contract_html,
    render_contract_pdf,
)
from domain.schedule import RepaymentMethod
from models.shapes import ContractInput, LoanTerms, Offer


def contract_36_months() -> ContractContext:
    """The contract of a ¥100,000 loan over 36 months (a 36-row schedule), from the engine."""
    terms = LoanTerms(
        Decimal("100000.00"),
        36,
        Decimal("0.108"),
        RepaymentMethod.EQUAL_INSTALLMENT,
        upfront_fee=Decimal("500.00"),
        monthly_fee=Decimal("10.00"),
    )
    on = date(2026, 11, 28)
    schedule = terms.schedule(on)
    offer = Offer(
        terms=terms,
        apr=Decimal("0.118"),
        apr_compound=Decimal("0.124"),
        total_interest=schedule.total_interest,
        total_fees=schedule.total_fees,
        total_payment=schedule.total_payment,
        first_payment=schedule.installments[0].payment,
        lpr=Decimal("0.03"),
        rate_cap=Decimal("0.12"),
        offered_on=on,
        expires_at=datetime(2026, 12, 5, tzinfo=UTC),
    )
    inp = ContractInput(
        application_no="AP202611280001",
        contract_no="HTAP202611280001",
        offer=offer,
        contract_date=on,
        penalty_multiple=Decimal("1.5"),
        at=datetime(2026, 11, 28, 2, tzinfo=UTC),
    )
    return contract_context(
        inp,
        lender=Lender(
            "LoanOps 示范小额贷款有限公司", "91310000MA1LOANOPS", "上海市", "400-000-0000"
        ),
        borrower_name="张三丰",
        borrower_id_number="11010519491231002X",
        borrower_phone="13800138000",
        bank_card="6222020200112233446",
        purpose="店铺装修",
        repayment_source="经营收入",
    )


def main() -> None:
    logging.disable(logging.WARNING)
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    ctx = contract_36_months()
    assert len(ctx.installments) == 36
    html = render_contract_html(ctx)
    render_contract_pdf(ctx)  # warm-up: font discovery, template compilation
    layout, full = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        HTML(string=html, base_url=str(TEMPLATES_DIR)).render()
        layout.append(time.perf_counter() - start)
        start = time.perf_counter()
        render_contract_pdf(ctx)
        full.append(time.perf_counter() - start)
    base, total = statistics.median(layout), statistics.median(full)
    print(f"layout only (baseline)   median {base * 1000:7.1f} ms over {rounds} rounds")
    print(f"render + write PDF       median {total * 1000:7.1f} ms")
    print(f"ratio full / layout      {total / base:7.2f}x")


if __name__ == "__main__":
    main()
