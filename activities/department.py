"""The department's daily jobs, as activities: classification, the portfolio snapshot, the
reconciliation of the bank's ledger with the records, and the low-liquidity check.

Each is idempotent by its business key: the classification and the snapshot by business date
(``loanops.classification``, ``loanops.reports``), a reconciliation difference by its key
(``domain.reconciliation.Difference.key``), a run by its business date.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.progress import beat
from adapters.bank import HttpBank
from domain.funding import POOL_CODE
from domain.money import format_money
from domain.reconciliation import (
    BankMovement,
    Direction,
    RecordedMovement,
    compare,
)
from loanops.classification import reclassify_all
from loanops.db import session_scope
from loanops.reports import snapshot_portfolio
from loanops.settings import Settings
from models.audit import append_audit
from models.funding import liquidity_of
from models.jobs import (
    DifferenceSettled,
    DifferenceTask,
    FinishReconciliation,
    FoundDifference,
    LiquidityCheck,
    ReconcileInput,
    ReconcileOutcome,
    StartJob,
)
from models.tables import (
    Disbursement,
    FundingPool,
    Payment,
    ReconciliationDifference,
    ReconciliationRun,
    Refund,
)


def _money(x: object) -> str | None:
    return None if x is None else format_money(x)  # type: ignore[arg-type]


class DepartmentActivities:
    def __init__(self, engine: Engine, settings: Settings, client: Client | None = None) -> None:
        self.engine = engine
        # Read at each call (the bank's address, the grace period).
        self.settings = settings
        # The worker's client, to start a job's workflow of the date (connected on first use
        # when not given).
        self._client = client

    # ---- starting the workflow of a date ----------------------------------------------------

    @activity.defn
    async def start_job_once(self, inp: StartJob) -> str | None:
        """Start ``inp.workflow_id`` on this task queue unless it exists (running or done; a
        failed or terminated one may run again): its id, or None when it was there already.

        An activity rather than a child workflow: the job of the date outlives the scheduled
        run that starts it, and a child abandoned by its parent also stops the time-skipping
        test server from skipping time."""
        if self._client is None:
            from loanops.temporal import connect

            self._client = await connect(self.settings)
        arg = inp.daily if inp.daily is not None else inp.liquidity
        try:
            await self._client.start_workflow(
                inp.workflow,
                arg,
                id=inp.workflow_id,
                task_queue=activity.info().task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            )
        except WorkflowAlreadyStartedError:
            return None
        return inp.workflow_id

    # ---- daily classification and portfolio snapshot -----------------------------------------

    @activity.defn
    def reclassify_book(self, as_of: date) -> int:
        """Apply the classification rules to every loan on the books for ``as_of``; the number
        of loans whose category changed (none the second time for a day)."""
        return len(
            reclassify_all(self.engine, as_of, tz=self.settings.business_timezone, progress=beat)
        )

    @activity.defn
    def take_portfolio_snapshot(self, as_of: date) -> None:
        """Store the day's portfolio report (the first snapshot of a day is kept)."""
        beat("started")
        snapshot_portfolio(self.engine, as_of)
        beat("stored")

    # ---- reconciliation ------------------------------------------------------------------------

    @activity.defn
    def reconcile_bank_ledger(self, inp: ReconcileInput) -> ReconcileOutcome:
        """Read the bank's ledger, compare it with the disbursements and repayments on record,
        record the run and every difference not recorded before; returns the differences this
        date's run found first and that are still to settle (the same answer on a retry).

        The grace period is measured on the wall clock, as the bank stamps its executions and
        the records their rows: a movement younger than it waits for the next run."""
        now = datetime.now(UTC)
        cutoff = now - timedelta(minutes=self.settings.reconciliation_grace_minutes)
        with HttpBank(self.settings.bank_url) as bank:
            ledger = bank.ledger()
        beat(f"bank ledger read: {len(ledger)} entries")
        movements = [
            BankMovement(
                key=e.key,
                direction=Direction(e.direction),
                amount=e.amount,
                reference=e.reference,
                executed_at=e.executed_at,
                value_date=e.value_date.isoformat(),
                counterparty=e.payee_account if e.direction == "out" else e.payer_account,
            )
            for e in ledger
            # The statement of the lender's pool account: its payouts and its credits.
            if (e.payer_account if e.direction == "out" else e.payee_account)
            == self.settings.bank_pool_account
        ]
        with Session(self.engine) as s:
            records = [
                RecordedMovement(
                    d.idempotency_key, Direction.OUT, d.net_amount, d.created_at, d.application_no
                )
                for d in s.exec(select(Disbursement)).all()
            ] + [
                RecordedMovement(
                    p.external_ref, Direction.IN, p.amount, p.created_at, p.application_no
                )
                for p in s.exec(select(Payment)).all()
            ]
            # A settled loan's credit refunded from the pool (settlement-refund-v1).
            records += [
                RecordedMovement(
                    r.order_key, Direction.OUT, r.amount, r.updated_at, r.application_no
                )
                for r in s.exec(select(Refund).where(Refund.status == "paid")).all()
                if r.order_key is not None
            ]
        beat(f"records read: {len(records)}")
        result = compare(movements, records, cutoff=cutoff)
        with session_scope(self.engine) as s:
            run = s.get(ReconciliationRun, inp.business_date)
            if run is None:
                run = ReconciliationRun(
                    business_date=inp.business_date,
                    workflow_id=inp.workflow_id,
                    cutoff=cutoff,
                    started_at=now,
                )
            known = set(
                s.exec(
                    select(ReconciliationDifference.key).where(
                        col(ReconciliationDifference.key).in_([d.key for d in result.differences])
                    )
                ).all()
            )
            new = [d for d in result.differences if d.key not in known]
            for d in new:
                s.add(
                    ReconciliationDifference(
                        key=d.key,
                        business_date=inp.business_date,
                        kind=d.kind.value,
                        direction=d.direction.value,
                        reference=d.reference,
                        application_no=d.application_no,
                        bank_amount=d.bank_amount,
                        record_amount=d.record_amount,
                        detail={**d.detail, "summary": d.summary},
                        found_at=now,
                    )
                )
            run.workflow_id = inp.workflow_id
            run.status = "running"
            run.cutoff = cutoff
            run.bank_movements = len(movements)
            run.records = len(records)
            run.matched = result.matched
            run.in_grace = result.in_grace
            run.differences_found = len(result.differences)
            run.differences_new += len(new)
            s.add(run)
            append_audit(
                s,
                key=f"reconciliation/{inp.business_date}/{activity.info().workflow_run_id}",
                application_no=None,
                actor="system",
                action="reconciliation.compared",
                occurred_at=now,
                detail={
                    "business_date": inp.business_date.isoformat(),
                    "bank_movements": len(movements),
                    "records": len(records),
                    "differences_found": len(result.differences),
                    "differences_new": len(new),
                },
            )
        with Session(self.engine) as s:
            pending = s.exec(
                select(ReconciliationDifference)
                .where(
                    ReconciliationDifference.business_date == inp.business_date,
                    col(ReconciliationDifference.status).in_(["open", "escalated"]),
                )
                .order_by(col(ReconciliationDifference.key))
            ).all()
            to_settle = tuple(
                FoundDifference(
                    key=d.key,
                    kind=d.kind,
                    direction=d.direction,
                    reference=d.reference,
                    summary=str(d.detail.get("summary", d.key)),
                    status=d.status,
                    application_no=d.application_no,
                    bank_amount=_money(d.bank_amount),
                    record_amount=_money(d.record_amount),
                    detail=dict(d.detail),
                )
                for d in pending
            )
        return ReconcileOutcome(
            business_date=inp.business_date,
            bank_movements=len(movements),
            records=len(records),
            matched=result.matched,
            in_grace=result.in_grace,
            differences_found=len(result.differences),
            to_settle=to_settle,
        )

    @activity.defn
    def note_difference_task(self, inp: DifferenceTask) -> None:
        """The task opened for a difference (the newest one, after an escalation)."""
        with session_scope(self.engine) as s:
            row = s.exec(
                select(ReconciliationDifference).where(ReconciliationDifference.key == inp.key)
            ).one()
            row.task_id = uuid.UUID(inp.task_id)
            s.add(row)

    @activity.defn
    def settle_difference(self, inp: DifferenceSettled) -> None:
        """Record what became of a difference: resolved (who, the comment), escalated to the
        department manager, or unresolved (nobody settled it within its task's SLAs)."""
        with session_scope(self.engine) as s:
            row = s.exec(
                select(ReconciliationDifference).where(ReconciliationDifference.key == inp.key)
            ).one()
            if row.status == inp.status:
                return
            row.status = inp.status
            if inp.status == "resolved":
                row.resolved_by = inp.decided_by
                row.resolved_at = inp.at
            if inp.comment:
                row.comment = inp.comment
            s.add(row)
            append_audit(
                s,
                key=f"reconciliation/difference/{inp.key}/{inp.status}",
                application_no=row.application_no,
                actor=inp.decided_by or "system",
                action=f"reconciliation_difference.{inp.status}",
                occurred_at=inp.at,
                detail={"key": inp.key, "comment": inp.comment},
            )

    @activity.defn
    def finish_reconciliation(self, inp: FinishReconciliation) -> None:
        """Record how the run ended; a run that could not read the bank's ledger is recorded
        too (with nothing compared), and audited with the reason."""
        with session_scope(self.engine) as s:
            run = s.get(ReconciliationRun, inp.business_date)
            if run is None:
                run = ReconciliationRun(
                    business_date=inp.business_date,
                    workflow_id=inp.workflow_id,
                    cutoff=inp.at,
                    started_at=inp.at,
                )
            elif run.status == inp.status:
                return
            run.status = inp.status
            run.finished_at = inp.at
            s.add(run)
            append_audit(
                s,
                key=f"reconciliation/{inp.business_date}/{inp.workflow_id}/{inp.status}",
                actor="system",
                action=f"reconciliation.{inp.status}",
                occurred_at=inp.at,
                detail={"business_date": inp.business_date.isoformat(), "reason": inp.reason},
            )

    # ---- liquidity -------------------------------------------------------------------------------

    @activity.defn
    def check_liquidity(self, as_of: date) -> LiquidityCheck:
        """The pool's liquidity figures; ``low`` when the available money is below the pool's
        warning line. Without a funding pool on record nothing is low (there is nothing to
        watch yet)."""
        with Session(self.engine) as s:
            pool = s.get(FundingPool, POOL_CODE)
            figures = liquidity_of(s, as_of=as_of)
        return LiquidityCheck(
            as_of=as_of,
            low=pool is not None and figures.available < figures.threshold,
            available=format_money(figures.available),
            threshold=format_money(figures.threshold),
            balance=format_money(figures.balance),
            reserved=format_money(figures.reserved),
            committed_amount=format_money(figures.committed_amount),
            expected_inflows_7d=format_money(figures.expected_inflows_7d),
            coverage_ratio=str(figures.coverage_ratio)
            if figures.coverage_ratio is not None
            else None,
            warnings=tuple(figures.warnings),
        )
