"""The Temporal Schedule of the daily post-loan review sweep (workflows/review_sweep.py): every
day at 01:00 business time (after the daily overdue refresh at 00:05), one sweep at a time (a run
still going when the next is due makes that one skip), catching up one missed run at most.

``review_sweep_schedule`` gives what ``client.create_schedule`` takes; ``ensure_review_schedule``
creates it, or brings an existing one to this definition. (To be folded into the common
schedules registry, loanops/schedules.py, at merge.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from domain.identifiers import REVIEW_SWEEP_SCHEDULE, REVIEW_SWEEP_WORKFLOW
from loanops.settings import Settings
from models.shapes import ReviewSweepInput

SWEEP_HOUR = 1


@dataclass(frozen=True)
class ScheduleDefinition:
    """``client.create_schedule(definition.id, definition.schedule)``."""

    id: str
    schedule: Schedule


def review_sweep_schedule(settings: Settings) -> ScheduleDefinition:
    tz = settings.business_timezone
    return ScheduleDefinition(
        id=REVIEW_SWEEP_SCHEDULE,
        schedule=Schedule(
            action=ScheduleActionStartWorkflow(
                REVIEW_SWEEP_WORKFLOW,
                ReviewSweepInput(business_timezone=tz),
                id=f"{REVIEW_SWEEP_SCHEDULE}-run",
                task_queue=settings.temporal_task_queue,
                execution_timeout=timedelta(hours=6),
            ),
            spec=ScheduleSpec(
                calendars=[
                    ScheduleCalendarSpec(
                        hour=[ScheduleRange(SWEEP_HOUR)],
                        minute=[ScheduleRange(0)],
                        second=[ScheduleRange(0)],
                    )
                ],
                time_zone_name=tz,
            ),
            policy=SchedulePolicy(
                overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(days=1)
            ),
        ),
    )


async def ensure_review_schedule(client: Client, settings: Settings) -> None:
    """Create the sweep's schedule, or update an existing one to this definition."""
    definition = review_sweep_schedule(settings)
    try:
        await client.create_schedule(definition.id, definition.schedule)
    except ScheduleAlreadyRunningError:

        def update(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=definition.schedule)

        await client.get_schedule_handle(definition.id).update(update)
