"""The bare Temporal loan the benches compare LoanOps with: the same orchestration counts as one
LoanOps loan from application to SETTLED (issue 13: 31 activities, 12 updates), doing nothing.

Seven activities run at the start; each of the 12 updates runs two more and answers once they
are done (as a LoanOps decision answers once the workflow acted on it): 7 + 12 × 2 = 31. The
memory bench rests it on a timer instead (``rest_days``)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

ACTIVITIES_AT_START = 7
UPDATES = 12
ACTIVITIES_PER_UPDATE = 2
ACTIVITIES = ACTIVITIES_AT_START + UPDATES * ACTIVITIES_PER_UPDATE  # 31
BARE_WORKFLOW = "BareLoanWorkflow"
BARE_UPDATE = "decide"


# How many no-op activities this process ran (the memory bench waits on it).
RAN = [0]


@activity.defn(name="bare_noop")
async def noop(step: int) -> int:
    """Does nothing (an async activity: no thread, no database)."""
    RAN[0] += 1
    return step


@workflow.defn(name=BARE_WORKFLOW)
class BareLoanWorkflow:
    def __init__(self) -> None:
        self.decisions = 0
        self.steps = 0

    async def _step(self) -> None:
        self.steps += 1
        await workflow.execute_activity(
            noop, self.steps, start_to_close_timeout=timedelta(seconds=60)
        )

    @workflow.run
    async def run(self, rest_days: int = 0) -> str:
        """``rest_days``: one activity, then rest on a timer this long (the memory bench);
        else the 31 activities and the 12 updates of a loan."""
        if rest_days:
            await self._step()
            await workflow.sleep(timedelta(days=rest_days))
            return "RESTED"
        for _ in range(ACTIVITIES_AT_START):
            await self._step()
        await workflow.wait_condition(
            lambda: self.decisions >= UPDATES and workflow.all_handlers_finished()
        )
        return "SETTLED"

    @workflow.update(name=BARE_UPDATE)
    async def decide(self, n: int) -> int:
        for _ in range(ACTIVITIES_PER_UPDATE):
            await self._step()
        self.decisions += 1
        return self.decisions
