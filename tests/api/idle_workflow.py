"""A workflow that only waits: a worker for it polls the task queue (the readiness tests)."""

from __future__ import annotations

from temporalio import workflow


@workflow.defn(name="IdleForReadiness")
class IdleWorkflow:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)
