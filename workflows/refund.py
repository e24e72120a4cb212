"""The refund of a settled loan's credit (issue 12 §2, settlement-refund-v1).

Nothing accepted after the last fen goes unaccounted: a payment booked between "paid off" and
"settlement confirmed" is credit, part of the settlement's figures and of this refund; a payment
that reaches the ledger after the confirmation is refused (workflows/servicing.py). A loan that
settles with credit keeps its (SETTLED) workflow open until the credit is refunded:

1. ``refund`` (an operations specialist, the maker): check the amount and the payee — the
   account the signed contract names, shown masked — then ``approve`` (request it) or ``hold``
   (comment: why; a new refund task opens a day later, as one that nobody decided does).
2. ``refund_authorization`` (another operations specialist, never the maker): ``authorize``,
   or ``reject`` (comment: why) which goes back to step 1.
3. The bank pays it: a child ``RefundWorkflow`` sends one order under ``refund-<application_no>``
   and follows it to the bank's outcome, like a payout (at most once per key).
4. Executed: the refund is recorded (amount, bank order id, value date, maker, checker; audited)
   and the borrower gets the ``refund_paid`` SMS. Rejected by the bank, refused, or the bank
   still down after the retries: the refund is recorded as failed with the bank's reason and a
   ``refund_failed`` task opens — ``retry`` sends it again (a new key after a rejection, the
   same key after an outage: never paid twice), ``close`` (comment: how the money was returned
   otherwise) ends it on record. Never a failed workflow.

Deterministic code only.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from decimal import Decimal

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.payout import PayoutActivities
    from activities.refund import RefundActivities
    from domain.money import format_money
    from domain.payout import BANK_CALLBACK_SIGNAL, OrderState
    from domain.refund import (
        REFUND_WORKFLOW,
        RefundStatus,
        refund_order_key,
        refund_workflow_id,
    )
    from domain.tasks import TaskKind
    from models.shapes import (
        BankCallback,
        DecisionRequest,
        OpenRefundInput,
        OpenTask,
        OrderInput,
        OrderOutcome,
        PayoutInput,
        RecordRefundInput,
        RefundPayee,
        RefundStepInput,
    )
    from workflows.common import DB_WRITE, POLL, LoanProgress, business_refusal, refuse
    from workflows.human_tasks import HumanTasks
    from workflows.payout import SEND_OPTIONS, STATUS_WAIT_SECONDS, _cause

# A held refund (or one nobody decided) is asked for again a day later.
HOLD = timedelta(days=1)
# Decisions that must say why.
NEEDS_COMMENT = {
    (TaskKind.REFUND, "hold"),
    (TaskKind.REFUND_AUTHORIZATION, "reject"),
    (TaskKind.REFUND_FAILED, "close"),
}


class SettlementRefund:
    """The refund tasks and the bank order of one settled loan (servicing composes it)."""

    def __init__(self, progress: LoanProgress, tasks: HumanTasks) -> None:
        self._p = progress
        self._tasks = tasks
        self.status: RefundStatus | None = None

    @staticmethod
    def check(task: OpenTask, req: DecisionRequest) -> None:
        """The decide validator's extra check: a hold, a rejection or a close says why."""
        if (task.kind, req.decision) in NEEDS_COMMENT and not (req.comment or "").strip():
            refuse("InvalidData", f"comment: a {req.decision} of a {task.kind.value} needs why")

    async def run(self, amount: Decimal) -> None:
        """Refund ``amount`` (the credit the settlement recorded); returns once it is paid or
        closed on record."""
        app_no = self._p.application_no
        payee = await workflow.execute_activity_method(
            RefundActivities.open_refund,
            OpenRefundInput(app_no, amount, workflow.now()),
            **DB_WRITE,
        )
        self.status = RefundStatus.AWAITING_MAKER
        context = _context(amount, payee)
        attempt = 1
        while True:
            maker = await self._decided(TaskKind.REFUND, context)
            if maker is None or maker.decision != "approve":
                if maker is not None:
                    await self._step(RefundStatus.AWAITING_MAKER, maker.user, maker.comment)
                with contextlib.suppress(TimeoutError):
                    await self._p.rest(lambda: False, at_most=HOLD)
                continue
            await self._step(RefundStatus.AWAITING_CHECKER, maker.user)
            checker = await self._decided(
                TaskKind.REFUND_AUTHORIZATION, {**context, "requested_by": maker.user}
            )
            if checker is None or checker.decision != "authorize":
                reason = checker.comment if checker else "nobody authorized the refund"
                await self._step(
                    RefundStatus.AWAITING_MAKER, checker.user if checker else "system", reason
                )
                continue
            while True:
                key = refund_order_key(app_no, attempt)
                await self._step(RefundStatus.SENT, checker.user, order_key=key)
                outcome = await workflow.execute_child_workflow(
                    RefundWorkflow.run,
                    PayoutInput(app_no, key, amount, self._p.policy),
                    id=refund_workflow_id(key),
                )
                if outcome.state == OrderState.EXECUTED.value:
                    await workflow.execute_activity_method(
                        RefundActivities.record_refund,
                        RecordRefundInput(
                            application_no=app_no,
                            order_key=key,
                            amount=amount,
                            bank_order_id=outcome.bank_order_id,
                            value_date=outcome.value_date,
                            made_by=maker.user,
                            checked_by=checker.user,
                            at=workflow.now(),
                        ),
                        **DB_WRITE,
                    )
                    self.status = RefundStatus.PAID
                    return
                reason = _reason(outcome)
                await self._step(RefundStatus.FAILED, "system", reason, order_key=key)
                failed = await self._decided(
                    TaskKind.REFUND_FAILED,
                    {**context, "order_key": key, "state": outcome.state, "reason": reason},
                )
                if failed is not None and failed.decision == "close":
                    await self._step(RefundStatus.CLOSED, failed.user, failed.comment)
                    return
                if outcome.state != OrderState.UNAVAILABLE.value:
                    attempt += 1  # the key is spent (rejected): the next order has its own

    async def _decided(self, kind: TaskKind, context: dict[str, object]) -> DecisionRequest | None:
        task_id = await self._tasks.open(kind, context=context)
        return await self._tasks.wait(task_id, resting=True)

    async def _step(
        self,
        status: RefundStatus,
        by: str,
        reason: str | None = None,
        *,
        order_key: str | None = None,
    ) -> None:
        self.status = status
        await workflow.execute_activity_method(
            RefundActivities.refund_step,
            RefundStepInput(
                self._p.application_no, status.value, workflow.now(), by, order_key, reason
            ),
            **DB_WRITE,
        )


def _context(amount: Decimal, payee: RefundPayee) -> dict[str, object]:
    return {
        "amount": format_money(amount),
        "payee_account": payee.account,
        "payee": "the account the signed contract names",
        "contract_no": payee.contract_no,
    }


def _reason(outcome: OrderOutcome) -> str:
    if outcome.state == OrderState.REJECTED.value:
        return f"the bank rejected the refund: {outcome.reason_code} {outcome.reason or ''}".strip()
    return outcome.reason or f"the refund order is {outcome.state}"


@workflow.defn(name=REFUND_WORKFLOW)
class RefundWorkflow:
    """One refund order, paid at most once: sent under its key, followed until the bank states
    an outcome (a verified callback nudges it, else a status query every
    ``policy.payout_confirmation_minutes``). Rejected, refused or unavailable are returned with
    the reason, never raised."""

    @workflow.init
    def __init__(self, inp: PayoutInput) -> None:
        self._inp = inp
        self._nudged = False
        self._callbacks: set[str] = set()

    @workflow.run
    async def run(self, inp: PayoutInput) -> OrderOutcome:
        outcome = await self._send()
        wait = timedelta(minutes=inp.policy.payout_confirmation_minutes)
        first = True
        while outcome.state in (OrderState.PENDING.value, "missing"):
            if outcome.state == "missing":  # the bank never accepted the key: send it again
                outcome = await self._send()
                continue
            if not first:
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(lambda: self._nudged, timeout=wait)
            first = False
            self._nudged = False
            outcome = await workflow.execute_activity_method(
                PayoutActivities.payment_order_status,
                OrderInput(inp.application_no, inp.order_key, wait_seconds=STATUS_WAIT_SECONDS),
                **POLL,
            )
        return outcome

    async def _send(self) -> OrderOutcome:
        inp = self._inp
        try:
            return await workflow.execute_activity_method(
                RefundActivities.send_refund_order,
                OrderInput(inp.application_no, inp.order_key),
                **SEND_OPTIONS,
            )
        except ActivityError as exc:
            refusal = business_refusal(exc)
            if refusal is not None:
                return OrderOutcome(
                    OrderState.REFUSED.value, inp.order_key, reason="; ".join(refusal.reasons)
                )
            return OrderOutcome(
                OrderState.UNAVAILABLE.value,
                inp.order_key,
                reason=f"the bank could not be reached ({_cause(exc)}); the order key "
                f"{inp.order_key} is kept: retrying sends it again and never pays twice",
            )

    @workflow.signal(name=BANK_CALLBACK_SIGNAL)
    def bank_callback(self, event: BankCallback) -> None:
        if event.order_key != self._inp.order_key or event.event_id in self._callbacks:
            return
        self._callbacks.add(event.event_id)
        self._nudged = True
