"""Write-off and recovery (issue 10 §5), composed into servicing like ``Reviews`` into
origination. Guarded by the patch ``write-off-v1``.

An approved write-off (the collections episode's maker-checker: the risk manager proposes, the
department manager approves) moves the loan from SERVICING to WRITTEN_OFF and records what is
written off, principal, interest, penalty and fees separately: everything the ledger says is
outstanding that day, penalties accrued to it. Decisions where the issue is silent:

- The ledger is frozen on the write-off date: no more penalty accrues, no reminders or overdue
  marking; the installments not yet due are written off with their scheduled interest (the
  ledger stays as it stood, so a recovery is allocated exactly like a payment was).
- The loan's workflow keeps running for recoveries (continuing as new as servicing does): a
  payment posted on a written-off loan is a recovery, allocated by the ledger (as of the
  write-off date) and recorded in ``write_off_recoveries`` with the running total. Only plain
  payments are taken (no payoff or prepayment modes).
- It ends when the written-off amount is recovered in full: the ledger is paid, and the loan is
  settled the usual way (SETTLED, with its settlement certificate). Until then it waits.
- The classification reads the write-off as 损失: the activity writes the ``loan.written_off``
  event and reclassifies the loan.

Deterministic code only.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.collections import CollectionsActivities
    from domain.lifecycle import Stage
    from models.shapes import (
        PaymentResult,
        RecoveryInput,
        WriteOffApproved,
        WriteOffInput,
        WriteOffState,
    )
    from workflows.common import DB_WRITE, LoanProgress
    from workflows.ledger import LoanLedger

WRITE_OFF_PATCH = "write-off-v1"
ZERO = Decimal("0")


class WriteOff:
    def __init__(
        self,
        progress: LoanProgress,
        ledger: LoanLedger,
        state: WriteOffState | None,
        pending: WriteOffApproved | None,
    ) -> None:
        self._p = progress
        self._ledger = ledger
        self.state = state
        self.pending = pending
        if state is not None:
            ledger.frozen_on = state.written_off_on

    @property
    def done(self) -> bool:
        return self.state is not None

    def approved(self, approval: WriteOffApproved) -> None:
        """The signal's body: acted on by the main loop (``apply``)."""
        if self.state is None and self.pending is None:
            self.pending = approval

    async def apply(self) -> None:
        """Write the loan off (callers hold the ledger lock)."""
        approval = self.pending
        self.pending = None
        if approval is None or self.state is not None or self._p.stage != Stage.SERVICING:
            return
        if not workflow.patched(WRITE_OFF_PATCH):
            return
        today = self._p.today()
        self._ledger.accrue(today)
        inst = self._ledger.installments
        state = WriteOffState(
            written_off_on=today,
            principal=sum((i.principal_outstanding for i in inst), ZERO),
            interest=sum((i.interest_outstanding for i in inst), ZERO),
            penalty=sum((i.penalty_outstanding for i in inst), ZERO),
            fees=sum((i.fee_outstanding for i in inst), ZERO),
        )
        self.state = state
        self._ledger.frozen_on = today
        await self._p.enter(
            Stage.WRITTEN_OFF,
            actor=approval.approved_by,
            reason=f"write-off proposed by {approval.proposed_by}, "
            f"approved by {approval.approved_by}",
        )
        await workflow.execute_activity_method(
            CollectionsActivities.record_write_off,
            WriteOffInput(
                application_no=self._p.application_no,
                at=workflow.now(),
                state=state,
                approval=approval,
                policy_version=self._p.policy.version,
                business_timezone=self._p.policy.business_timezone,
            ),
            **DB_WRITE,
        )

    async def recovered(self, outcome: PaymentResult) -> None:
        """A payment on a written-off loan: record it as a recovery (no-op before a write-off)."""
        if self.state is None or outcome.duplicate:
            return
        applied = sum((line.amount for line in outcome.lines), ZERO)
        self.state = replace(self.state, recovered=self.state.recovered + applied)
        await workflow.execute_activity_method(
            CollectionsActivities.record_recovery,
            RecoveryInput(
                application_no=self._p.application_no,
                external_ref=outcome.external_ref,
                amount=applied,
                at=workflow.now(),
                recovered_total=self.state.recovered,
            ),
            **DB_WRITE,
        )
