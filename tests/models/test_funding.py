"""The funding pool in the database, on SQLite and PostgreSQL: reservations reserve / release /
consume idempotently by key, refusals change nothing, concurrent reservations cannot overdraw,
inflows count once, and the liquidity indicators match figures computed by hand."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from domain.funding import FundingConflict, FundingError, InsufficientFunds, MakerCheckerViolation
from domain.funding import MovementKind as K
from models.funding import (
    authorize_movement,
    consume,
    liquidity_of,
    open_with_balance,
    record_inflow,
    release,
    request_movement,
    reserve,
)
from models.tables import (
    Application,
    AuditEvent,
    Borrower,
    FundingMovement,
    FundingPool,
    Installment,
    Loan,
)

NOW = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
POOL_ACCOUNT = "9558800200100000005"
D = Decimal


def pool(engine: Engine) -> FundingPool:
    with Session(engine) as s:
        row = s.get(FundingPool, "main")
        assert row is not None
        return row


def figures(engine: Engine) -> tuple[Decimal, Decimal]:
    p = pool(engine)
    return p.balance, p.reserved


@pytest.fixture
def funded(engine: Engine) -> Engine:
    with Session(engine) as s:
        assert open_with_balance(
            s, account_no=POOL_ACCOUNT, amount=D("100000.00"), actor="system", at=NOW
        )
    return engine


def test_opening_balance_is_recorded_once(funded: Engine) -> None:
    with Session(funded) as s:
        assert not open_with_balance(
            s, account_no=POOL_ACCOUNT, amount=D("100000.00"), actor="system", at=NOW
        )
        (opening,) = s.exec(select(FundingMovement)).all()
        assert (opening.kind, opening.balance_after) == ("opening_balance", D("100000.00"))
    assert figures(funded) == (D("100000.00"), D("0.00"))


def test_reserve_is_idempotent_by_key_and_a_changed_amount_conflicts(funded: Engine) -> None:
    with Session(funded) as s:
        first = reserve(
            s, key="payout-A1", application_no="A1", amount=D("30000.00"), actor="worker", at=NOW
        )
        again = reserve(
            s, key="payout-A1", application_no="A1", amount=D("30000.00"), actor="worker", at=NOW
        )
        assert (first.key, again.status) == ("payout-A1", "reserved")
        with pytest.raises(FundingConflict, match=r"already reserves 30000\.00 for A1"):
            reserve(
                s,
                key="payout-A1",
                application_no="A1",
                amount=D("30000.01"),
                actor="worker",
                at=NOW,
            )
    assert figures(funded) == (D("100000.00"), D("30000.00"))


def test_insufficient_funds_is_refused_naming_the_amount_and_changes_nothing(
    funded: Engine,
) -> None:
    with Session(funded) as s:
        reserve(s, key="k1", application_no="A1", amount=D("60000.00"), actor="w", at=NOW)
        with pytest.raises(InsufficientFunds) as refused:
            reserve(s, key="k2", application_no="A2", amount=D("40000.01"), actor="w", at=NOW)
    assert str(refused.value) == ("amount: 40000.01 exceeds the pool's available funds 40000.00")
    assert figures(funded) == (D("100000.00"), D("60000.00"))
    with Session(funded) as s:
        assert s.exec(select(AuditEvent).where(AuditEvent.application_no == "A2")).all() == []


def test_release_gives_the_money_back_once(funded: Engine) -> None:
    with Session(funded) as s:
        reserve(s, key="k1", application_no="A1", amount=D("60000.00"), actor="w", at=NOW)
        assert release(s, key="k1", actor="w", at=NOW).status == "released"
        assert release(s, key="k1", actor="w", at=NOW).status == "released"
        with pytest.raises(FundingConflict, match="is released, it cannot be consumed"):
            consume(s, key="k1", actor="w", at=NOW)
    assert figures(funded) == (D("100000.00"), D("0.00"))


def test_consume_pays_out_once_and_is_audited(funded: Engine) -> None:
    with Session(funded) as s:
        reserve(s, key="k1", application_no="A1", amount=D("45000.50"), actor="w", at=NOW)
        first = consume(s, key="k1", actor="w", at=NOW, bank_order_id="BO1")
        again = consume(s, key="k1", actor="w", at=NOW, bank_order_id="BO1")
        assert first.id == again.id and first.balance_after == D("54999.50")
        with pytest.raises(FundingConflict, match="is consumed, it cannot be released"):
            release(s, key="k1", actor="w", at=NOW)
        actions = s.exec(select(AuditEvent.action).where(AuditEvent.application_no == "A1")).all()
    assert sorted(actions) == ["funding_paid_out", "funding_reserved"]
    assert figures(funded) == (D("54999.50"), D("0.00"))


def test_concurrent_reservations_never_overdraw(funded: Engine) -> None:
    """Twenty reservations of ¥10,000 at once against ¥100,000: exactly ten succeed."""

    def attempt(i: int) -> bool:
        with Session(funded) as s:
            try:
                reserve(
                    s, key=f"k{i}", application_no=f"A{i}", amount=D("10000.00"), actor="w", at=NOW
                )
                return True
            except InsufficientFunds:
                return False

    with ThreadPoolExecutor(max_workers=8) as pool_:
        results = list(pool_.map(attempt, range(20)))
    assert results.count(True) == 10
    assert figures(funded) == (D("100000.00"), D("100000.00"))


def test_the_same_key_reserved_concurrently_is_one_reservation(funded: Engine) -> None:
    def attempt(_: int) -> str:
        with Session(funded) as s:
            row = reserve(
                s,
                key="payout-A1",
                application_no="A1",
                amount=D("30000.00"),
                actor="worker",
                at=NOW,
            )
            return row.status

    with ThreadPoolExecutor(max_workers=8) as pool_:
        assert set(pool_.map(attempt, range(16))) == {"reserved"}
    assert figures(funded) == (D("100000.00"), D("30000.00"))
    with Session(funded) as s:
        events = s.exec(select(AuditEvent).where(AuditEvent.action == "funding_reserved")).all()
    assert len(events) == 1


def test_inflow_counts_once_per_key(funded: Engine) -> None:
    with Session(funded) as s:
        record_inflow(
            s, key="PAY-1", amount=D("8512.34"), actor="worker", at=NOW, application_no="A1"
        )
        record_inflow(
            s, key="PAY-1", amount=D("8512.34"), actor="worker", at=NOW, application_no="A1"
        )
        with pytest.raises(FundingConflict):
            record_inflow(
                s, key="PAY-1", amount=D("1.00"), actor="worker", at=NOW, application_no="A1"
            )
        with pytest.raises(FundingError, match="amount: must be greater than 0"):
            record_inflow(s, key="PAY-2", amount=D("0"), actor="worker", at=NOW)
    assert figures(funded) == (D("108512.34"), D("0.00"))


def test_manual_movement_maker_checker(funded: Engine) -> None:
    with Session(funded) as s:
        movement, created = request_movement(
            s,
            kind=K.WITHDRAWAL,
            amount=D("20000.00"),
            reference="V-1",
            reason="repay investor",
            requested_by="manager",
            at=NOW,
        )
        assert created and movement.status == "pending"
        assert figures(funded) == (D("100000.00"), D("0.00"))  # nothing moves yet
        with pytest.raises(MakerCheckerViolation, match="manager requested this movement"):
            authorize_movement(s, movement_id=movement.id, authorizer="manager", at=NOW)
        done = authorize_movement(s, movement_id=movement.id, authorizer="risk", at=NOW)
        assert (done.status, done.authorized_by, done.balance_after) == (
            "authorized",
            "risk",
            D("80000.00"),
        )
        assert authorize_movement(s, movement_id=movement.id, authorizer="risk", at=NOW).id == (
            movement.id
        )
        with pytest.raises(FundingConflict, match="already authorized by risk"):
            authorize_movement(s, movement_id=movement.id, authorizer="manager2", at=NOW)
    assert figures(funded) == (D("80000.00"), D("0.00"))


def test_withdrawal_is_checked_again_when_authorized(funded: Engine) -> None:
    with Session(funded) as s:
        movement, _ = request_movement(
            s,
            kind=K.WITHDRAWAL,
            amount=D("90000.00"),
            reference="V-2",
            reason="r",
            requested_by="manager",
            at=NOW,
        )
        reserve(s, key="k1", application_no="A1", amount=D("20000.00"), actor="w", at=NOW)
        with pytest.raises(InsufficientFunds, match=r"90000\.00 exceeds .* 80000\.00"):
            authorize_movement(s, movement_id=movement.id, authorizer="risk", at=NOW)
        s.refresh(movement)
        assert movement.status == "pending"
    assert figures(funded) == (D("100000.00"), D("20000.00"))


# ---- liquidity against figures computed by hand ----------------------------------------------


def _application(s: Session, no: str, stage: str, amount: str, borrower: Borrower) -> None:
    s.add(
        Application(
            application_no=no,
            borrower_id=borrower.id,
            amount=D(amount),
            term_months=6,
            purpose="p",
            repayment_source="r",
            stage=stage,
            submitted_by="officer",
        )
    )


def test_liquidity_indicators_match_hand_computed_figures(funded: Engine) -> None:
    today = date(2026, 11, 29)
    with Session(funded) as s:
        b = Borrower(
            name="张三丰",
            id_number="11010519491231002X",
            phone="13800138000",
            bank_card="6222020200112233446",
            monthly_income=D("18000.00"),
        )
        s.add(b)
        s.flush()
        _application(s, "A-OFFER", "OFFER_CONFIRMATION", "50000.00", b)  # priced below
        _application(s, "A-SIGN", "CONTRACT_SIGNING", "30000.00", b)
        _application(s, "A-PAY", "DISBURSEMENT", "20000.00", b)  # reserved below
        _application(s, "A-RISK", "RISK_REVIEW", "99999.00", b)  # not committed yet
        _application(s, "A-LIVE", "SERVICING", "10000.00", b)
        s.add(
            Loan(
                application_no="A-OFFER",
                contract_no="C-1",
                principal=D("40000.00"),
                annual_rate=D("0.12"),
                term_months=6,
                method="equal_installment",
                upfront_fee=D("400.00"),
                apr=D("0.13"),
                apr_compound=D("0.14"),
            )
        )
        due = [
            (today - timedelta(days=3), "1000.00", "100.00", "0.00", "scheduled"),  # overdue
            (today, "1000.00", "100.00", "0.00", "scheduled"),  # in 7 and 30
            (today + timedelta(days=7), "2000.00", "50.00", "500.00", "scheduled"),  # part paid
            (today + timedelta(days=8), "3000.00", "0.00", "0.00", "scheduled"),  # 30 only
            (today + timedelta(days=30), "400.00", "0.00", "0.00", "scheduled"),  # 30 only
            (today + timedelta(days=31), "9999.00", "0.00", "0.00", "scheduled"),  # beyond
            (today + timedelta(days=2), "5000.00", "0.00", "0.00", "paid"),  # paid
        ]
        for n, (d, principal, interest, paid, st) in enumerate(due, start=1):
            s.add(
                Installment(
                    application_no="A-LIVE",
                    number=n,
                    due_date=d,
                    principal_due=D(principal),
                    interest_due=D(interest),
                    principal_paid=D(paid),
                    status=st,
                )
            )
        s.commit()
        reserve(
            s, key="payout-A-PAY", application_no="A-PAY", amount=D("20000.00"), actor="w", at=NOW
        )
        figures_ = liquidity_of(s, as_of=today)

    # balance 100,000; reserved 20,000 → available 80,000
    assert (figures_.balance, figures_.reserved, figures_.available) == (
        D("100000.00"),
        D("20000.00"),
        D("80000.00"),
    )
    # committed: 40,000 − 400 (priced) + 30,000 + 20,000 = 89,600 over three applications
    assert (figures_.committed_count, figures_.committed_amount) == (3, D("89600.00"))
    assert figures_.committed_by_stage == {
        "OFFER_CONFIRMATION": (1, D("39600.00")),
        "CONTRACT_SIGNING": (1, D("30000.00")),
        "DISBURSEMENT": (1, D("20000.00")),
    }
    # outflows not yet reserved: 39,600 + 30,000 = 69,600; coverage 69,600 / 80,000 = 0.87
    assert figures_.expected_outflows == D("69600.00")
    assert figures_.coverage_ratio == D("0.8700")
    # inflows: 7 days: 1,100 + (2,050 − 500) = 2,650; 30 days: 2,650 + 3,000 + 400 = 6,050
    assert figures_.expected_inflows_7d == D("2650.00")
    assert figures_.expected_inflows_30d == D("6050.00")
    assert figures_.overdue_outstanding == D("1100.00")
    # available 80,000 < the default threshold 1,000,000
    assert figures_.low_liquidity
    assert figures_.warnings == [
        "available 80000.00 is below the low-liquidity threshold 1000000.00"
    ]


def test_liquidity_without_a_pool_is_all_zero(engine: Engine) -> None:
    with Session(engine) as s:
        f = liquidity_of(s, as_of=date(2026, 11, 29))
    assert (f.balance, f.available, f.coverage_ratio, f.committed_count) == (
        D("0.00"),
        D("0.00"),
        None,
        0,
    )
    assert f.low_liquidity


def test_reserving_from_an_unopened_pool_is_refused(engine: Engine) -> None:
    with Session(engine) as s, pytest.raises(FundingError, match="no funding pool"):
        reserve(s, key=str(uuid.uuid4()), application_no="A1", amount=D("1.00"), actor="w", at=NOW)
