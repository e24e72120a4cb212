"""Runs the Temporal worker: the loan workflows (origination, servicing) and every activity, built
with their dependencies; beside it, the notice relay that delivers the outbox.

And the render worker (issue 13): the activities that render a document (``RENDER_ACTIVITIES``)
are scheduled by the workflows on the render queue (``Settings.render_task_queue``), served by
``loanops worker --queue render`` in a process of its own, so a contract's seconds of CPU never
delay a workflow task. ``--queue all`` (the default) runs both in one process, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities.aftercare import AftercareActivities
from activities.applications import ApplicationActivities
from activities.archive import ArchiveActivities
from activities.assessment import AssessmentActivities, ReportActivities
from activities.collections import CollectionsActivities
from activities.contracts import ContractActivities
from activities.department import DepartmentActivities
from activities.disbursement import DisbursementActivities
from activities.ledger import LedgerActivities
from activities.payout import PayoutActivities
from activities.products import ProductActivities
from activities.refund import RefundActivities
from activities.rendering import Lender
from activities.servicing import ServicingActivities
from activities.settlement import SettlementActivities
from activities.tasks import TaskActivities
from adapters.bank import HttpBank
from adapters.bureau import HttpCreditBureau
from adapters.sms import HttpSmsGateway
from loanops.db import make_engine
from loanops.documents import FileSystemDocumentStore
from loanops.notice_relay import Clock, NoticeRelay, RelayConfig, utcnow
from loanops.settings import Settings, get_settings
from loanops.temporal import connect, ensure_search_attributes
from workflows.collections import CollectionsWorkflow
from workflows.department import DEPARTMENT_WORKFLOWS
from workflows.origination import OriginationWorkflow
from workflows.payout import PayoutWorkflow
from workflows.refund import RefundWorkflow
from workflows.review_sweep import ReviewSweepWorkflow
from workflows.servicing import ServicingWorkflow

# The loans' workflows, then the department's scheduled jobs (loanops.schedules), one queue.
WORKFLOWS = [
    OriginationWorkflow,
    ServicingWorkflow,
    PayoutWorkflow,
    RefundWorkflow,
    CollectionsWorkflow,
    ReviewSweepWorkflow,
    *DEPARTMENT_WORKFLOWS,
]

log = logging.getLogger("loanops.worker")

# The activities that render a PDF (WeasyPrint): the workflows schedule them on the render queue
# (workflows.common.on_render_queue). The loans' worker keeps them registered too, for a render
# scheduled on its queue before the change.
RENDER_ACTIVITIES = frozenset(
    {
        "prepare_contract",
        "record_signature",
        "render_risk_report",
        "issue_settlement_certificate",
    }
)
# Which worker(s) a process runs: the loans' workflows and activities, the renders, or both.
QUEUES = ("all", "loans", "render")


def lender_of(settings: Settings) -> Lender:
    """The lender documents name, from settings."""
    return Lender(
        name=settings.lender_name,
        credit_code=settings.lender_credit_code,
        address=settings.lender_address,
        complaint_phone=settings.lender_complaint_phone,
    )


def build_activities(
    engine: Engine, settings: Settings, client: Client | None = None
) -> list[Callable[..., Any]]:
    """Every activity method, bound to its dependencies (``client``: the worker's, for the
    department jobs that start the workflow of a date; connected from settings if None)."""
    objs = [
        TaskActivities(engine),
        ApplicationActivities(engine),
        ContractActivities(engine, lender=lender_of(settings), settings=settings),
        DisbursementActivities(engine),
        ServicingActivities(engine),
        SettlementActivities(engine, lender=lender_of(settings)),
        AssessmentActivities(engine, HttpCreditBureau(settings.bureau_url)),
        ReportActivities(engine),
        ProductActivities(engine),
        PayoutActivities(
            engine,
            HttpBank(settings.bank_url),
            payer_account=settings.bank_pool_account,
            callback_url=lambda: settings.bank_callback_url,
        ),
        RefundActivities(
            engine,
            HttpBank(settings.bank_url),
            payer_account=settings.bank_pool_account,
            callback_url=lambda: settings.bank_callback_url,
        ),
        LedgerActivities(engine),
        ArchiveActivities(engine, FileSystemDocumentStore(settings.document_dir)),
        AftercareActivities(engine),
        CollectionsActivities(engine),
        DepartmentActivities(engine, settings, client),
    ]
    methods: list[Callable[..., Any]] = []
    for obj in objs:
        for name in dir(type(obj)):
            attr = getattr(obj, name)
            if callable(attr) and hasattr(attr, "__temporal_activity_definition"):
                methods.append(attr)
    return methods


def activity_name(fn: Callable[..., Any]) -> str:
    from temporalio import activity

    return activity._Definition.must_from_callable(fn).name or ""


def build_worker(
    client: Client,
    engine: Engine,
    settings: Settings,
    *,
    task_queue: str | None = None,
    executor: ThreadPoolExecutor,
) -> Worker:
    """The loans' worker: every workflow and activity, its workflow cache sized by the memory
    budget (``Settings.max_cached_workflows``)."""
    return Worker(
        client,
        task_queue=task_queue or settings.temporal_task_queue,
        workflows=WORKFLOWS,
        activities=build_activities(engine, settings, client),
        activity_executor=executor,
        max_concurrent_activities=16,
        max_cached_workflows=settings.max_cached_workflows,
    )


def build_render_worker(
    client: Client, engine: Engine, settings: Settings, *, executor: ThreadPoolExecutor
) -> Worker:
    """The render worker: only the rendering activities, on ``settings.render_task_queue``, at
    most ``settings.render_concurrency`` at once (CPU-bound; more would only slow each)."""
    return Worker(
        client,
        task_queue=settings.render_task_queue,
        activities=[
            fn
            for fn in build_activities(engine, settings, client)
            if activity_name(fn) in RENDER_ACTIVITIES
        ],
        activity_executor=executor,
        max_concurrent_activities=max(1, settings.render_concurrency),
    )


def build_notice_relay(
    engine: Engine, settings: Settings, *, clock: Clock = utcnow
) -> tuple[NoticeRelay, HttpSmsGateway]:
    """The notice relay over the settings' SMS gateway (close the gateway when done). Receipts
    go to ``settings.sms_receipt_url``, read at each send."""
    gateway = HttpSmsGateway(settings.sms_url, timeout=settings.sms_timeout_seconds)
    config = RelayConfig(
        max_attempts=settings.notice_max_attempts,
        retry_base=timedelta(seconds=settings.notice_retry_base_seconds),
        retry_cap=timedelta(seconds=settings.notice_retry_max_seconds),
        lease=timedelta(seconds=max(60.0, 3 * settings.sms_timeout_seconds)),
        poll_seconds=settings.notice_poll_seconds,
    )
    relay = NoticeRelay(
        engine, gateway, callback_url=lambda: settings.sms_receipt_url, clock=clock, config=config
    )
    return relay, gateway


async def run_render_worker(client: Client, engine: Engine, settings: Settings) -> None:
    with ThreadPoolExecutor(
        max_workers=max(1, settings.render_concurrency), thread_name_prefix="render"
    ) as executor:
        worker = build_render_worker(client, engine, settings, executor=executor)
        log.info("render worker polling %s", settings.render_task_queue)
        try:
            await worker.run()
        except asyncio.CancelledError:
            log.info("render worker stopping")


async def run_worker(settings: Settings | None = None, queue: str = "all") -> None:
    """Run the loans' worker (``loans``), the render worker (``render``) or both (``all``)."""
    if queue not in QUEUES:
        raise ValueError(f"queue must be one of {', '.join(QUEUES)}, not {queue!r}")
    settings = settings or get_settings()
    client = await connect(settings)
    if queue == "render":
        engine = make_engine(settings.database_url)
        try:
            await run_render_worker(client, engine, settings)
        finally:
            engine.dispose()
        return
    await ensure_search_attributes(client)
    if settings.schedules_enabled:
        await ensure_schedules_logged(client, settings)
    engine = make_engine(settings.database_url)
    render_task = (
        asyncio.create_task(run_render_worker(client, engine, settings)) if queue == "all" else None
    )
    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="activity") as executor:
        worker = build_worker(client, engine, settings, executor=executor)
        log.info("workflow cache: %d loans", settings.max_cached_workflows)
        relay, gateway = build_notice_relay(engine, settings)
        stop_relay = asyncio.Event()
        relay_task = asyncio.create_task(relay.run(stop_relay))
        log.info("worker polling %s on %s", settings.temporal_task_queue, settings.temporal_address)
        log.info("notice relay sending SMS through %s", settings.sms_url)
        try:
            await worker.run()
        except asyncio.CancelledError:
            log.info("worker stopping")
        finally:
            stop_relay.set()  # the relay finishes the notice it is sending, then stops
            await asyncio.shield(relay_task)
            if render_task is not None:
                render_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await render_task
            gateway.close()
            engine.dispose()


async def ensure_schedules_logged(client: Client, settings: Settings) -> None:
    """The department's schedules, created or updated; a server without schedules (the
    time-skipping test server) is logged, not fatal: the worker still serves the loans."""
    from loanops.schedules import ensure_schedules

    try:
        done = await ensure_schedules(client, settings)
    except RPCError as exc:
        log.warning("could not create or update the department's schedules: %s", exc.message)
        return
    log.info("schedules: %s", ", ".join(f"{sid} {what}" for sid, what in done.items()))


def main(queue: str = "all") -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from loanops import logredact

    logredact.install()  # no secret in the worker's log either
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_worker(queue=queue))


if __name__ == "__main__":
    main()
