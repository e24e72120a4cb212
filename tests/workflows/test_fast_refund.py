"""Nothing accepted after settlement goes unaccounted (issue 12 §2), in the real servicing
workflow on the time-skipping server with fake activities: payments racing the settlement are
booked before it (their credit refunded) or refused; the credit left at settlement is refunded
through maker-checker tasks and one bank order. Servicing starts today: 12,000.00 over 3
months at 9.6 %, equal installments."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from datetime import date
from decimal import Decimal

from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateStage
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from domain.identifiers import PAYMENT_UPDATE
from domain.lifecycle import Stage
from domain.tasks import TaskKind
from models.shapes import PaymentRequest, PaymentResult
from tests.workflows.fakes import ROLES_OF, Fast, fast_worker


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


async def _outcome(call: Awaitable[PaymentResult]) -> PaymentResult | str:
    """The payment's result, or the type of its refusal."""
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
