"""Nothing accepted after settlement goes unaccounted (issue 12 §2), in the real servicing
workflow on the time-skipping server with fake activities: payments racing the settlement are
booked before it (their credit refunded) or refused; the credit left at settlement is refunded
through maker-checker tasks and one bank order. Servicing starts today: 12,000.00 over 3
months at 9.6 %, equal installments."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import TypeVar

from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from domain.identifiers import PAYMENT_UPDATE
from domain.lifecycle import Stage
from domain.refund import refund_workflow_id
from domain.tasks import TaskKind
from models.shapes import PaymentRequest, PaymentResult
from tests.workflows.fakes import ROLES_OF, Fast, fast_worker
from tests.workflows.test_replay import check_and_maybe_record

T = TypeVar("T")


async def _until(what: str, ready: Callable[[], bool]) -> None:
    """Wait for something the fakes or the workflow's view will show (not for time to pass)."""
    for _ in range(1500):
        if ready():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what} never happened")


async def _until_view(fast: Fast, no: str, what: str, ready: Callable[..., bool]) -> None:
    for _ in range(1500):
        if ready(await fast.view(no)):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{no}: {what} never happened")


async def _outcome(call: Awaitable[T]) -> T | str:
    """The update's result, or the type of its refusal."""
    try:
        return await call
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        assert isinstance(cause, ApplicationError), cause
        assert cause.type is not None
        return cause.type


async def _accepted_payment(
    fast: Fast, no: str, ref: str, amount: str, paid_on: date
) -> Awaitable[PaymentResult | str]:
    """Post a payment and return once its validator accepted it (its handler then waits for
    the ledger lock); awaiting the result gives the result or the refusal's type."""
    req = PaymentRequest(
        external_ref=ref,
        amount=Decimal(amount),
        paid_at=await fast.env.get_current_time(),
        paid_on=paid_on,
        recorded_by="ops",
        roles=ROLES_OF["ops"],
    )
    update_id = f"payment-{ref}"
    try:
        await fast.handle(no).start_update(
            PAYMENT_UPDATE,
            req,
            id=update_id,
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
            result_type=PaymentResult,
        )
    except WorkflowUpdateFailedError as err:
        refused = err.cause
        assert isinstance(refused, ApplicationError) and refused.type is not None

        async def refusal() -> str:
            return str(refused.type)

        return refusal()
    # The same update id again attaches to the accepted update (the API's way too).
    return asyncio.ensure_future(
        _outcome(
            fast.handle(no).execute_update(
                PAYMENT_UPDATE, req, id=update_id, result_type=PaymentResult
            )
        )
    )


async def _paid_off(fast: Fast) -> tuple[str, date, Decimal]:
    no = await fast.start_servicing()
    view = await fast.view(no)
    assert view.start_date is not None
    total = sum((i.total_outstanding for i in view.installments), Decimal("0"))
    paid = await fast.pay(no, f"all-{no}", total, view.start_date)
    assert paid.stage == Stage.SERVICING and paid.credit == 0
    return no, view.start_date, total


async def test_payments_racing_the_settlement_are_booked_before_it_or_refused(
    temporal_env: WorkflowEnvironment,
) -> None:
    """The last fen is paid; an overpayment (A) holds the ledger lock while it is recorded; B is
    accepted and waits for the lock; the settlement is confirmed (the run loop waits for the
    lock after B); C arrives while the settlement waits. A is credit and part of the
    settlement; B and C find the loan settling and are refused: nothing is booked after the
    credit the settlement recorded."""
    async with fast_worker(temporal_env) as fast:
        no, start, _ = await _paid_off(fast)
        confirmation = await fast.task_of(no, TaskKind.SETTLEMENT_CONFIRMATION)
        hold = threading.Event()
        fast.records.payment_holds[f"a-{no}"] = hold
        a = asyncio.ensure_future(_outcome(fast.pay(no, f"a-{no}", Decimal("10.00"), start)))
        try:
            await _until("A holds the lock", lambda: f"a-{no}" in fast.records.payments_held)
            b = await _accepted_payment(fast, no, f"b-{no}", "20.00", start)
            decided = asyncio.ensure_future(fast.decide(no, confirmation, "confirm", "ops2"))
            # The confirmation closed: the run loop now waits for the lock, after B.
            await _until_view(
                fast,
                no,
                "the confirmation closed",
                lambda v: all(t.kind != TaskKind.SETTLEMENT_CONFIRMATION for t in v.open_tasks),
            )
            c = await _accepted_payment(fast, no, f"c-{no}", "30.00", start)
        finally:
            hold.set()
        first = await a
        assert isinstance(first, PaymentResult) and first.credit == Decimal("10.00")
        assert await b == "WrongStage"
        assert await c == "WrongStage"
        await decided
        await _until_view(fast, no, "SETTLED", lambda v: v.stage == Stage.SETTLED)
        # Every accepted payment is in the ledger or was refused; the credit is what settled.
        assert set(fast.records.payments) == {f"all-{no}", f"a-{no}"}
        assert fast.records.settled[no].credit == Decimal("10.00")
        assert (await fast.view(no)).credit == Decimal("10.00")
        # After SETTLED the validator refuses at once, naming why.
        late = await _outcome(fast.pay(no, f"d-{no}", Decimal("5.00"), start))
        assert late == "WrongStage"
        assert f"d-{no}" not in fast.records.payments
        # The credit of the settlement is refunded: its maker's task is open.
        refund = await fast.task_of(no, TaskKind.REFUND)
        assert fast.records.tasks[refund].context == {
            "amount": "10.00",
            "payee_account": "6222 **** 3446",
            "payee": "the account the signed contract names",
            "contract_no": f"HT{no}",
        }
        assert fast.records.settled[no].refund_task
        await check_and_maybe_record(fast.client, f"loan-{no}", "settled_racing_payments")


async def _settled_with_credit(fast: Fast, credit: str) -> str:
    """A loan paid off, then overpaid by ``credit`` before its settlement is confirmed."""
    no, start, _ = await _paid_off(fast)
    over = await fast.pay(no, f"over-{no}", Decimal(credit), start)
    assert over.credit == Decimal(credit)
    confirmation = await fast.task_of(no, TaskKind.SETTLEMENT_CONFIRMATION)
    assert fast.records.tasks[confirmation].context is not None
    await fast.decide(no, confirmation, "confirm", "ops")
    await _until_view(fast, no, "SETTLED", lambda v: v.stage == Stage.SETTLED)
    assert fast.records.settled[no].credit == Decimal(credit)
    assert fast.records.settled[no].refund_task
    return no


async def _request_and_authorize(fast: Fast, no: str) -> None:
    refund = await fast.task_of(no, TaskKind.REFUND)
    await fast.decide(no, refund, "approve", "ops2")
    authorization = await fast.task_of(no, TaskKind.REFUND_AUTHORIZATION)
    assert fast.records.tasks[authorization].excluded == ("ops2",)
    await fast.decide(no, authorization, "authorize", "ops3")


async def test_the_credit_at_settlement_is_refunded_through_maker_and_checker(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        no = await _settled_with_credit(fast, "25.00")
        # The refund's task opens once SETTLED is recorded.
        await _until_view(fast, no, "the refund task", lambda v: v.refund == "awaiting_maker")
        view = await fast.view(no)
        assert view.refund == "awaiting_maker" and view.credit == Decimal("25.00")
        # The SETTLED workflow waits for its refund.
        assert (await fast.handle(no).describe()).status == WorkflowExecutionStatus.RUNNING
        refund = await fast.task_of(no, TaskKind.REFUND)
        # A hold says why; a new refund task opens a day later.
        assert await _outcome(fast.decide(no, refund, "hold", "ops2")) == "InvalidData"
        await fast.decide(no, refund, "hold", "ops2", comment="核对收款账户")
        await temporal_env.sleep(timedelta(days=1, hours=1))
        second = await fast.task_of(no, TaskKind.REFUND)
        assert second != refund
        await fast.decide(no, second, "approve", "ops2")
        authorization = await fast.task_of(no, TaskKind.REFUND_AUTHORIZATION)
        assert (await fast.view(no)).refund == "awaiting_checker"
        # Maker-checker: the maker may not authorize the refund.
        refused = await _outcome(fast.decide(no, authorization, "authorize", "ops2"))
        assert refused == "MakerChecker"
        await fast.decide(no, authorization, "authorize", "ops3")

        assert await fast.handle(no).result() == "SETTLED"
        paid = fast.records.refunds_paid[no]
        assert paid.order_key == f"refund-{no}" and paid.amount == Decimal("25.00")
        assert paid.bank_order_id == f"BO-refund-{no}" and paid.value_date is not None
        assert (paid.made_by, paid.checked_by) == ("ops2", "ops3")
        assert fast.records.bank_sends == [f"refund-{no}"]
        steps = [(s.status, s.by) for s in fast.records.refund_steps if s.application_no == no]
        assert steps == [
            ("awaiting_maker", "ops2"),
            ("awaiting_checker", "ops2"),
            ("sent", "ops3"),
        ]
        assert (await fast.view(no)).refund == "paid"
        await check_and_maybe_record(fast.client, f"loan-{no}", "settled_with_refund")
        await check_and_maybe_record(
            fast.client, refund_workflow_id(f"refund-{no}"), "refund_order_paid"
        )


async def test_a_bank_rejection_or_outage_becomes_a_task_and_never_pays_twice(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        no = await _settled_with_credit(fast, "8.00")
        fast.records.bank_rejects = 1
        await _request_and_authorize(fast, no)
        failed = await fast.task_of(no, TaskKind.REFUND_FAILED)
        context = fast.records.tasks[failed].context
        assert context is not None and context["state"] == "rejected"
        assert "ACCOUNT_FROZEN" in str(context["reason"])
        assert (await fast.view(no)).refund == "failed"
        # Retried after a rejection: a new key (the rejected one is spent); the bank is down.
        fast.records.bank_down = 1
        await fast.decide(no, failed, "retry", "ops")
        down = await fast.task_of(no, TaskKind.REFUND_FAILED)
        assert down != failed
        context = fast.records.tasks[down].context
        assert context is not None and context["state"] == "unavailable"
        assert context["order_key"] == f"refund-{no}-2"
        # Retried after an outage: the same key again, paid once.
        await fast.decide(no, down, "retry", "ops")
        assert await fast.handle(no).result() == "SETTLED"
        assert fast.records.bank_sends == [f"refund-{no}", f"refund-{no}-2", f"refund-{no}-2"]
        paid = fast.records.refunds_paid[no]
        assert paid.order_key == f"refund-{no}-2" and (paid.made_by, paid.checked_by) == (
            "ops2",
            "ops3",
        )


async def test_a_failed_refund_closed_by_hand_is_on_record(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        no = await _settled_with_credit(fast, "3.00")
        fast.records.bank_rejects = 1
        await _request_and_authorize(fast, no)
        failed = await fast.task_of(no, TaskKind.REFUND_FAILED)
        assert await _outcome(fast.decide(no, failed, "close", "ops")) == "InvalidData"
        await fast.decide(no, failed, "close", "ops", comment="柜台现金退还，凭证 R-17")
        assert await fast.handle(no).result() == "SETTLED"
        assert no not in fast.records.refunds_paid
        last = [s for s in fast.records.refund_steps if s.application_no == no][-1]
        assert (last.status, last.by, last.reason) == ("closed", "ops", "柜台现金退还，凭证 R-17")


async def test_a_loan_settled_without_credit_opens_no_refund(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        no, _, _ = await _paid_off(fast)
        await fast.confirm_settlement(no)
        assert not fast.records.settled[no].refund_task
        assert no not in fast.records.refunds_opened
        assert (await fast.view(no)).refund is None
