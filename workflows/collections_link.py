"""Servicing's side of the collections ladder (issue 10 §1): ``CollectionsLink`` starts an overdue
episode (``workflows.collections.CollectionsWorkflow``, by its registered name), tells it how the
loan stands and knows when it ended; the patches servicing guards it with.

Deterministic code only.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from temporalio import workflow
from temporalio.exceptions import FailureError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from domain.allocation import InstallmentBalance
    from domain.identifiers import (
        COLLECTIONS_ACCELERATE_SIGNAL,
        COLLECTIONS_STATUS_SIGNAL,
        COLLECTIONS_WORKFLOW,
        collections_workflow_id,
    )
    from domain.policy import LoanPolicy
    from models.shapes import CollectionsAcceleration, CollectionsInput, CollectionsStatus

COLLECTIONS_PATCH = "collections-ladder-v1"
# A post-loan review's "accelerate collection" moves the running episode up a rung (servicing).
ACCELERATE_PATCH = "accelerate-collection-v1"


def loan_status(installments: tuple[InstallmentBalance, ...], today: date) -> CollectionsStatus:
    """How the loan stands on ``today`` for its collections episode (from the ledger)."""
    overdue = [i for i in installments if not i.is_paid and i.due_date < today]
    paid = sum(
        (i.principal_paid + i.interest_paid + i.fee_paid + i.penalty_paid for i in installments),
        Decimal("0"),
    )
    return CollectionsStatus(
        overdue_since=min((i.due_date for i in overdue), default=None),
        overdue_amount=sum((i.total_outstanding for i in overdue), Decimal("0")),
        paid_total=paid,
        as_of=today,
    )


class CollectionsLink:
    """Servicing's side of the ladder: start an episode, keep it told, and know when it ended."""

    def __init__(self, application_no: str, policy: LoanPolicy, episode: int, running: bool):
        self._app_no = application_no
        self._policy = policy
        self.episode = episode
        self.running = running
        self._told: tuple[date | None, Decimal] | None = None

    @property
    def workflow_id(self) -> str:
        return collections_workflow_id(self._app_no, self.episode)

    async def overdue(self, installments: tuple[InstallmentBalance, ...], today: date) -> None:
        """An installment fell overdue: start an episode unless one runs (then tell it)."""
        if self.running:
            await self.tell(installments, today)
            return
        self.episode += 1
        status = loan_status(installments, today)
        await workflow.start_child_workflow(
            COLLECTIONS_WORKFLOW,
            CollectionsInput(
                application_no=self._app_no,
                episode=self.episode,
                policy=self._policy,
                parent_workflow_id=workflow.info().workflow_id,
                status=status,
            ),
            id=self.workflow_id,
            parent_close_policy=ParentClosePolicy.ABANDON,
        )
        self.running = True
        self._told = (status.overdue_since, status.paid_total)

    async def accelerate(self, request: CollectionsAcceleration) -> bool:
        """Ask the running episode to take its next rung now; False when none is running
        (a current loan: there is nothing to collect)."""
        if not self.running:
            return False
        try:
            await workflow.get_external_workflow_handle(self.workflow_id).signal(
                COLLECTIONS_ACCELERATE_SIGNAL, request
            )
        except FailureError:
            self.running = False
            return False
        return True

    async def tell(self, installments: tuple[InstallmentBalance, ...], today: date) -> None:
        """Signal the running episode when the oldest overdue date or the amount paid moved;
        once the loan is current the episode ends itself and is no longer running."""
        if not self.running:
            return
        status = loan_status(installments, today)
        key = (status.overdue_since, status.paid_total)
        if key == self._told:
            return
        self._told = key
        try:
            await workflow.get_external_workflow_handle(self.workflow_id).signal(
                COLLECTIONS_STATUS_SIGNAL, status
            )
        except FailureError:
            self.running = False  # the episode had already ended (its write-off)
            return
        if status.overdue_since is None:
            self.running = False
