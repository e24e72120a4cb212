"""Runs the Temporal worker: the loan workflows (origination, servicing) and every activity, built
with their dependencies."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.worker import Worker

from activities.applications import ApplicationActivities
from activities.assessment import AssessmentActivities, ReportActivities
from activities.contracts import ContractActivities
from activities.disbursement import DisbursementActivities
from activities.servicing import ServicingActivities
from activities.tasks import TaskActivities
from adapters.bureau import HttpCreditBureau
from loanops.db import make_engine
from loanops.settings import Settings, get_settings
from loanops.temporal import connect, ensure_search_attributes
from workflows.origination import OriginationWorkflow
from workflows.servicing import ServicingWorkflow

WORKFLOWS = [OriginationWorkflow, ServicingWorkflow]

log = logging.getLogger("loanops.worker")


def build_activities(engine: Engine, settings: Settings) -> list[Callable[..., Any]]:
    """Every activity method, bound to its dependencies."""
    objs = [
        TaskActivities(engine),
        ApplicationActivities(engine),
        ContractActivities(engine, lender_name=settings.lender_name, settings=settings),
        DisbursementActivities(engine),
        ServicingActivities(engine),
        AssessmentActivities(engine, HttpCreditBureau(settings.bureau_url)),
        ReportActivities(engine),
    ]
    methods: list[Callable[..., Any]] = []
    for obj in objs:
        for name in dir(type(obj)):
            attr = getattr(obj, name)
            if callable(attr) and hasattr(attr, "__temporal_activity_definition"):
                methods.append(attr)
    return methods


def build_worker(
    client: Client,
    engine: Engine,
    settings: Settings,
    *,
    task_queue: str | None = None,
    executor: ThreadPoolExecutor,
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue or settings.temporal_task_queue,
        workflows=WORKFLOWS,
        activities=build_activities(engine, settings),
        activity_executor=executor,
        max_concurrent_activities=16,
    )


async def run_worker(settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    client = await connect(settings)
    await ensure_search_attributes(client)
    engine = make_engine(settings.database_url)
    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="activity") as executor:
        worker = build_worker(client, engine, settings, executor=executor)
        log.info("worker polling %s on %s", settings.temporal_task_queue, settings.temporal_address)
        try:
            await worker.run()
        except asyncio.CancelledError:
            log.info("worker stopping")
        finally:
            engine.dispose()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_worker())


if __name__ == "__main__":
    main()
