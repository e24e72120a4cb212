"""Identifiers shared by the API, the workflows and the activities: one loan's workflow id, its
task ids, its contract number, and the names of the workflow types, updates and queries (so the
API can address a loan without importing workflow code)."""

from __future__ import annotations

import uuid
from datetime import date

TASK_NAMESPACE = uuid.UUID("6f1c2a52-4d0e-4c57-9c55-0b1f4a0e7a11")

ORIGINATION_WORKFLOW = "OriginationWorkflow"
SERVICING_WORKFLOW = "ServicingWorkflow"
# One child of servicing per overdue episode (the collections ladder).
COLLECTIONS_WORKFLOW = "CollectionsWorkflow"
# Servicing tells its collections episode how the loan stands (overdue since, paid so far); the
# episode tells servicing that a write-off was approved.
COLLECTIONS_STATUS_SIGNAL = "collections_status"
# A post-loan review decided to collect sooner: the running episode takes its next rung now.
COLLECTIONS_ACCELERATE_SIGNAL = "collections_accelerate"
WRITE_OFF_APPROVED_SIGNAL = "write_off_approved"

# Every loan workflow type answers these by name, whichever stage the loan is in.
DECIDE_UPDATE = "decide"
WITHDRAW_UPDATE = "withdraw"
SIGN_UPDATE = "sign_contract"
PAYMENT_UPDATE = "post_payment"
STATE_QUERY = "state"
# A servicing loan's payment reversal request (the maker's step).
REVERSAL_UPDATE = "request_payment_reversal"
# A servicing loan opens its post-loan review when the review sweep sends this signal.
REVIEW_SIGNAL = "request_post_loan_review"
REVIEW_SWEEP_WORKFLOW = "ReviewSweepWorkflow"
# The review sweep's schedule and the workflow id of each run it starts.
REVIEW_SWEEP_SCHEDULE = "post-loan-review-sweep"

# The ApplicationError type an activity raises for a business refusal (a failed pre-check, a
# bank rejection); its details are the reasons. The workflow turns it into a task, never a failure.
BUSINESS_REFUSAL = "BusinessRefusal"


def workflow_id(application_no: str) -> str:
    """One workflow id per loan for its whole life (origination continues as new into
    servicing on it)."""
    return f"loan-{application_no}"


def task_id_for(application_no: str, seq: int, kind: str) -> str:
    """Stable task id: the same business step always has the same id, whatever retries happen."""
    return str(uuid.uuid5(TASK_NAMESPACE, f"{application_no}/{seq}/{kind}"))


def risk_report_id(application_no: str, seq: int, fmt: str) -> uuid.UUID:
    """The stored risk report of an assessment round (``fmt`` pdf or html): one per round."""
    return uuid.uuid5(TASK_NAMESPACE, f"{application_no}/risk-report/{seq}/{fmt}")


def contract_no_for(application_no: str) -> str:
    return f"HT{application_no}"


def collections_workflow_id(application_no: str, episode: int) -> str:
    """The collections ladder of the loan's ``episode``-th overdue episode (1, 2, …)."""
    return f"collections-{application_no}-{episode}"


# The department's scheduled jobs (workflows/department.py, loanops/schedules.py).
CLASSIFICATION_SWEEP_WORKFLOW = "ClassificationSweepWorkflow"
PORTFOLIO_SNAPSHOT_WORKFLOW = "PortfolioSnapshotWorkflow"
RECONCILIATION_WORKFLOW = "ReconciliationWorkflow"
LIQUIDITY_CHECK_WORKFLOW = "LiquidityCheckWorkflow"
LOW_LIQUIDITY_WORKFLOW = "LowLiquidityWorkflow"


def reconciliation_workflow_id(business_date: date) -> str:
    """One reconciliation per business date: ``reconcile-2026-11-29``."""
    return f"reconcile-{business_date.isoformat()}"


def reconciliation_key(business_date: date) -> str:
    """The pseudo application number the reconciliation's tasks carry: ``RECON-20261129``."""
    return f"RECON-{business_date:%Y%m%d}"


def low_liquidity_workflow_id(business_date: date) -> str:
    """At most one low-liquidity alert per business date."""
    return f"low-liquidity-{business_date.isoformat()}"


def low_liquidity_key(business_date: date) -> str:
    return f"LIQ-{business_date:%Y%m%d}"


# The render task queue (issue 13): documents (contract, signing record, risk report, settlement
# certificate) are rendered by activities on a queue of their own, served by a render worker, so
# a render never delays the workflow tasks of the loans' worker. A workflow derives it from its
# own task queue (deterministic: the task queue is in the workflow's history): ``loanops`` →
# ``loanops-render``; ``Settings.render_task_queue`` gives the same name to the render worker.
RENDER_QUEUE_SUFFIX = "-render"


def render_queue_of(task_queue: str) -> str:
    """The render queue of the loans' ``task_queue``: ``loanops`` → ``loanops-render``."""
    return f"{task_queue}{RENDER_QUEUE_SUFFIX}"
