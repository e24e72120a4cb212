"""Payment reversal (冲正) in a servicing loan: an operations specialist asks for a bounced payment
to be reversed (the maker), a second one approves or rejects it in a ``payment_reversal`` task
(the checker: never the requester); on approval the ledger takes the payment out and re-computes
from that point (``LoanLedger.reverse``, the money engine's ``domain.reversal``). The servicing
loop then sees any installment that is due again and marks it overdue as it would any other.

Decisions where the issue is silent:
- One open request per payment: a repeated request answers with the task already open.
- A rejected (or lapsed) request leaves the payment as it is; it may be requested again.
- Requests are taken while the loan is in SERVICING and its settlement is not confirmed (a loan
  whose last fen is paid waits for the settlement confirmation: that is the window); once the
  settlement is confirmed, or the loan SETTLED, a request is refused (409).

Deterministic code only.
"""

from __future__ import annotations

import functools

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.lifecycle import Stage
    from domain.money import format_money
    from domain.permissions import Action, is_allowed
    from domain.tasks import Party, TaskKind
    from models.shapes import DecisionRequest, PendingReversal, ReversalRequest, ReversalTicket
    from workflows.common import LoanProgress, refuse
    from workflows.human_tasks import HumanTasks
    from workflows.ledger import LoanLedger

PATCH = "payment-reversal-v1"
MAX_REASON = 500


class PaymentReversals:
    def __init__(
        self,
        progress: LoanProgress,
        tasks: HumanTasks,
        ledger: LoanLedger,
        pending: tuple[PendingReversal, ...],
    ) -> None:
        self._p = progress
        self._tasks = tasks
        self._ledger = ledger
        self._requests: dict[str, ReversalRequest] = {
            p.request.external_ref: p.request for p in pending
        }
        # external_ref → the checker's task id (None while the task is being opened).
        self._task_of: dict[str, str | None] = {p.request.external_ref: p.task_id for p in pending}

    def resume(self) -> None:
        """After continue-as-new: watch the carried requests' tasks again (before the tasks'
        ``watch_all``, so their decisions are acted on)."""
        for ref, task_id in self._task_of.items():
            if task_id is not None:
                self._tasks.watch(task_id, functools.partial(self._decided, ref))

    def snapshot(self) -> tuple[PendingReversal, ...]:
        return tuple(
            PendingReversal(task_id, self._requests[ref])
            for ref, task_id in self._task_of.items()
            if task_id is not None
        )

    @property
    def pending(self) -> bool:
        return bool(self._task_of)

    def validate(self, req: ReversalRequest, stage: Stage, *, settling: bool) -> None:
        """Refuse a request before anything is written."""
        if not is_allowed(req.roles, Action.REQUEST_PAYMENT_REVERSAL):
            refuse("Forbidden", "a payment reversal is requested by an operations_specialist")
        if req.external_ref in self._task_of:
            return  # a repeat: answered with the open task
        if stage != Stage.SERVICING or settling:
            refuse(
                "WrongStage",
                "payments can be reversed only while the loan is in SERVICING and its "
                "settlement is not confirmed",
            )
        if not req.reason.strip():
            refuse("InvalidData", "reason: is required (why the payment is reversed)")
        if len(req.reason) > MAX_REASON:
            refuse("InvalidData", f"reason: at most {MAX_REASON} characters")
        why = self._ledger.reversal_refusal(req.external_ref, self._p.today())
        if why is not None:
            refuse("AlreadyReversed" if why.endswith("already reversed") else "WrongPayment", why)

    async def request(self, req: ReversalRequest) -> ReversalTicket:
        """Open the checker's task (once per payment while it is open)."""
        ref = req.external_ref
        if ref in self._task_of:
            await workflow.wait_condition(lambda: self._task_of.get(ref) is not None)
            return ReversalTicket(self._task_of[ref] or "", ref, duplicate=True)
        workflow.patched(PATCH)
        self._task_of[ref] = None
        self._requests[ref] = req
        payment = self._ledger.payment_of(ref)
        # Maker-checker: whoever asked may not approve.
        self._tasks.deciders[Party.REVERSAL_REQUESTER.value] = req.user
        task_id = await self._tasks.open(
            TaskKind.PAYMENT_REVERSAL,
            context={
                "payment_id": req.payment_id,
                "external_ref": ref,
                "amount": format_money(payment.amount),
                "mode": payment.mode.value,
                "paid_on": payment.paid_on.isoformat(),
                "reason": req.reason,
                "requested_by": req.user,
            },
        )
        self._task_of[ref] = task_id
        self._tasks.watch(task_id, functools.partial(self._decided, ref))
        return ReversalTicket(task_id, ref)

    async def _decided(self, ref: str, decision: DecisionRequest | None) -> None:
        """Act on the checker's decision; the request counts as pending until the ledger has
        taken the payment out (a settlement cannot be confirmed meanwhile)."""
        req = self._requests[ref]
        try:
            if decision is not None and decision.decision == "approve":
                async with self._ledger.lock:
                    await self._ledger.reverse(
                        ref,
                        today=self._p.today(),
                        reason=req.reason,
                        requested_by=req.user,
                        approved_by=decision.user,
                    )
        finally:
            self._requests.pop(ref, None)
            self._task_of.pop(ref, None)
