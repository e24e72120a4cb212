"""Settlement confirmation (seed §3.7): when the last fen is paid, an operations specialist checks
the ledger and confirms the settlement in a ``settlement_confirmation`` task; then the
certificate is issued and the documents archived (servicing does both), and the loan is SETTLED.

Decisions where the issue is silent:
- ``confirm`` is refused (409) while a payment reversal is pending: decide the reversal first.
  An approved reversal that makes the ledger unpaid again cancels the open confirmation task and
  the loan goes on being serviced; the next last fen opens a new one.
- ``hold`` (comment: why, e.g. the last payment has not cleared at the bank) closes the task; a
  new confirmation task opens after ``HOLD`` (one day), or sooner if a reversal reopens the
  ledger. A task nobody decides closes by its SLA rule and a new one opens the same way.
- The confirmation has no maker-checker: any operations specialist may confirm, the one who
  posted the last payment included (the check is of the ledger, which the workflow computed).

Deterministic code only.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.lifecycle import Stage
    from domain.money import format_money
    from domain.tasks import TaskKind
    from models.shapes import DecisionRequest, OpenTask
    from workflows.common import LoanProgress, refuse
    from workflows.human_tasks import HumanTasks
    from workflows.ledger import LoanLedger
    from workflows.reversal import PaymentReversals

PATCH = "settlement-confirmation-v1"
HOLD = timedelta(days=1)


class SettlementConfirmation:
    def __init__(
        self,
        progress: LoanProgress,
        tasks: HumanTasks,
        ledger: LoanLedger,
        reversals: PaymentReversals,
    ) -> None:
        self._p = progress
        self._tasks = tasks
        self._ledger = ledger
        self._reversals = reversals
        # The last fen is paid and the confirmation task is (being) opened.
        self.awaiting = False
        # Confirmed: the loan settles now (no more reversals).
        self.confirmed = False

    def context(self) -> dict[str, object]:
        """What the confirming specialist checks: the ledger's totals, and no pending reversal."""
        rows = self._ledger.installments

        def paid(field: str) -> Decimal:
            return sum((getattr(i, field) for i in rows), Decimal("0"))

        parts = {
            "principal_paid": paid("principal_paid"),
            "interest_paid": paid("interest_paid"),
            "fees_paid": paid("fee_paid"),
            "penalty_paid": paid("penalty_paid"),
        }
        return {
            **{k: format_money(v) for k, v in parts.items()},
            "total_paid": format_money(sum(parts.values(), Decimal("0"))),
            "outstanding": format_money(sum((i.total_outstanding for i in rows), Decimal("0"))),
            "credit": format_money(self._ledger.credit),
            "installments": len(rows),
            "payments": sum(1 for e in self._ledger.journal if not e.reversed),
            "reversal_pending": self._reversals.pending,
        }

    def check(self, task: OpenTask, req: DecisionRequest) -> None:
        """The decide validator's extra check: no confirmation while a reversal is pending;
        a hold says why."""
        if task.kind != TaskKind.SETTLEMENT_CONFIRMATION:
            return
        if req.decision == "confirm" and self._reversals.pending:
            refuse("WrongStage", "a payment reversal is pending: decide it before confirming")
        if req.decision == "hold" and not (req.comment or "").strip():
            refuse("InvalidData", "comment: a hold needs the reason")

    async def settle_confirmed(self) -> bool:
        """Wait for the confirmation; True once confirmed, False when the ledger was reopened
        (an approved reversal)."""
        self.awaiting = True
        try:
            while True:
                decided = await self._round()
                if decided is None:  # the ledger reopened: the task was cancelled
                    return False
                decision = decided[0]
                if decision is not None and decision.decision == "confirm":
                    self.confirmed = True
                    return True
                if decision is not None:  # hold: look again tomorrow
                    with contextlib.suppress(TimeoutError):
                        await self._p.rest(lambda: not self._ledger.paid_off, at_most=HOLD)
                if not self._ledger.paid_off:
                    return False
        finally:
            self.awaiting = False

    async def _round(self) -> list[DecisionRequest | None] | None:
        """One confirmation task: [its decision] (None inside: it closed undecided), or None
        when the ledger reopened first (the task is then cancelled)."""
        task_id = await self._tasks.open(TaskKind.SETTLEMENT_CONFIRMATION, context=self.context())
        decided: list[DecisionRequest | None] = []

        async def then(decision: DecisionRequest | None) -> None:
            decided.append(decision)
            if decision is not None and decision.decision == "confirm":
                # The confirmation's answer (read once this task is closed) says where it goes:
                # the certificate, the archive, then SETTLED.
                self._p.moving_to = Stage.SETTLED

        self._tasks.watch(task_id, then)
        await self._p.rest(lambda: bool(decided) or not self._ledger.paid_off, at_most=None)
        if not decided:
            await self._tasks.cancel(task_id)
            return None
        return decided
