"""The shapes the department's scheduled jobs (workflows/department.py) pass to their
activities: the daily classification and portfolio snapshot, the reconciliation of the bank's
ledger with the records, and the low-liquidity check."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True)
class DailyJobInput:
    """A daily job's argument: the business date it runs for; None (a schedule's start) means
    the business date of the moment it starts, in ``timezone``."""

    timezone: str = "Asia/Shanghai"
    as_of: date | None = None


@dataclass(frozen=True)
class DailyJobResult:
    as_of: date
    # What the run did: loans whose classification changed, snapshots stored, tasks opened...
    count: int = 0
    # The workflow that did the work when this run only started it (reconcile-<date>, ...).
    started: str | None = None


@dataclass(frozen=True)
class ReconcileInput:
    business_date: date
    workflow_id: str


@dataclass(frozen=True)
class FoundDifference:
    key: str
    kind: str
    direction: str
    reference: str
    summary: str
    status: str
    application_no: str | None = None
    bank_amount: str | None = None
    record_amount: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def context(self) -> dict[str, Any]:
        """What the person settling it sees on the task."""
        return {
            "difference_key": self.key,
            "kind": self.kind,
            "direction": self.direction,
            "reference": self.reference,
            "summary": self.summary,
            "application_no": self.application_no,
            "bank_amount": self.bank_amount,
            "record_amount": self.record_amount,
            **{k: v for k, v in self.detail.items() if k not in ("summary",)},
        }


@dataclass(frozen=True)
class ReconcileOutcome:
    business_date: date
    bank_movements: int
    records: int
    matched: int
    in_grace: int
    differences_found: int
    # The differences this date's run found first and that are not settled yet.
    to_settle: tuple[FoundDifference, ...] = ()


@dataclass(frozen=True)
class DifferenceTask:
    key: str
    task_id: str


@dataclass(frozen=True)
class DifferenceSettled:
    key: str
    # resolved / escalated / unresolved
    status: str
    at: datetime
    decided_by: str | None = None
    comment: str | None = None


@dataclass(frozen=True)
class FinishReconciliation:
    business_date: date
    # completed, or bank_unavailable (the ledger could not be read after the retries)
    status: str
    at: datetime
    workflow_id: str = ""
    reason: str | None = None


@dataclass(frozen=True)
class LiquidityCheck:
    """The pool's figures on a business date (money as strings, for the task's context)."""

    as_of: date
    low: bool
    available: str
    threshold: str
    balance: str
    reserved: str
    committed_amount: str
    expected_inflows_7d: str
    coverage_ratio: str | None = None
    warnings: tuple[str, ...] = ()

    def context(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "available": self.available,
            "threshold": self.threshold,
            "balance": self.balance,
            "reserved": self.reserved,
            "committed_amount": self.committed_amount,
            "expected_inflows_7d": self.expected_inflows_7d,
            "coverage_ratio": self.coverage_ratio,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class StartJob:
    """Start the workflow of a date unless it exists: ``reconcile-<date>`` (with ``daily``) or
    ``low-liquidity-<date>`` (with ``liquidity``)."""

    workflow: str
    workflow_id: str
    daily: DailyJobInput | None = None
    liquidity: LiquidityCheck | None = None
