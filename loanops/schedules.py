"""The department's Temporal Schedules, declared as data, and ``ensure_schedules`` that creates or
updates each of them (idempotent: the worker calls it at every start, so ``loanops dev`` has them).

Times are local times of the business timezone (settings). Every schedule skips a start while
the previous one still runs (overlap SKIP) and catches up missed starts within its catch-up
window (a worker or server down at 02:00 still reconciles when it is back the same day).

| id                      | workflow                    | when (business timezone)             |
|-------------------------|-----------------------------|--------------------------------------|
| daily-classification    | ClassificationSweepWorkflow | daily at ``classification_time``     |
| daily-portfolio-snapshot| PortfolioSnapshotWorkflow   | daily at ``portfolio_snapshot_time`` |
| daily-reconciliation    | ReconciliationWorkflow      | daily at ``reconciliation_time``     |
| hourly-liquidity-check  | LiquidityCheckWorkflow      | hourly at ``liquidity_check_minute`` |
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import time, timedelta

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

from domain.identifiers import (
    CLASSIFICATION_SWEEP_WORKFLOW,
    LIQUIDITY_CHECK_WORKFLOW,
    PORTFOLIO_SNAPSHOT_WORKFLOW,
    RECONCILIATION_WORKFLOW,
    REVIEW_SWEEP_SCHEDULE,
    REVIEW_SWEEP_WORKFLOW,
)
from loanops.settings import Settings
from models.jobs import DailyJobInput
from models.shapes import ReviewSweepInput

# The post-loan review sweep runs after the daily overdue refresh (00:05) and the
# classification, so it sees the day's 关注 loans.
REVIEW_SWEEP_HOUR = 1


@dataclass(frozen=True)
class ScheduleDef:
    """One schedule: its id, the workflow type it starts (by name) with ``args``, the local
    times it starts at (``hours`` × ``minute``), and how far back a missed start is caught up."""

    id: str
    workflow: str
    args: tuple[object, ...]
    hours: tuple[int, ...]
    minute: int
    timezone: str
    catchup_window: timedelta
    note: str
    overlap: ScheduleOverlapPolicy = ScheduleOverlapPolicy.SKIP

    @property
    def workflow_id(self) -> str:
        """The id prefix of the workflows it starts (the server appends the start time)."""
        return f"{self.id}-run"

    def schedule(self, task_queue: str) -> Schedule:
        return Schedule(
            action=ScheduleActionStartWorkflow(
                self.workflow,
                args=list(self.args),
                id=self.workflow_id,
                task_queue=task_queue,
            ),
            spec=ScheduleSpec(
                calendars=[
                    ScheduleCalendarSpec(
                        hour=[ScheduleRange(h) for h in self.hours],
                        minute=[ScheduleRange(self.minute)],
                        comment=self.note,
                    )
                ],
                time_zone_name=self.timezone,
            ),
            policy=SchedulePolicy(overlap=self.overlap, catchup_window=self.catchup_window),
        )


def _at(value: str, name: str) -> time:
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name}: must be a local time HH:MM, not {value!r}") from None


def department_schedules(settings: Settings) -> list[ScheduleDef]:
    """The department's schedules from settings (the business timezone and the times)."""
    tz = settings.business_timezone
    daily = DailyJobInput(timezone=tz)
    classification = _at(settings.classification_time, "classification_time")
    snapshot = _at(settings.portfolio_snapshot_time, "portfolio_snapshot_time")
    reconciliation = _at(settings.reconciliation_time, "reconciliation_time")
    if not 0 <= settings.liquidity_check_minute <= 59:
        raise ValueError("liquidity_check_minute: must be between 0 and 59")
    return [
        ScheduleDef(
            id="daily-classification",
            workflow=CLASSIFICATION_SWEEP_WORKFLOW,
            args=(daily,),
            hours=(classification.hour,),
            minute=classification.minute,
            timezone=tz,
            catchup_window=timedelta(hours=12),
            note="five-category classification of every loan on the books (issue 10 §2)",
        ),
        ScheduleDef(
            id="daily-portfolio-snapshot",
            workflow=PORTFOLIO_SNAPSHOT_WORKFLOW,
            args=(daily,),
            hours=(snapshot.hour,),
            minute=snapshot.minute,
            timezone=tz,
            catchup_window=timedelta(hours=12),
            note="the day's portfolio report, kept for trends (issue 10 §8)",
        ),
        ScheduleDef(
            id="daily-reconciliation",
            workflow=RECONCILIATION_WORKFLOW,
            args=(daily,),
            hours=(reconciliation.hour,),
            minute=reconciliation.minute,
            timezone=tz,
            catchup_window=timedelta(hours=12),
            note="the bank's ledger against the disbursements and repayments (issue 9 §6)",
        ),
        ScheduleDef(
            id=REVIEW_SWEEP_SCHEDULE,
            workflow=REVIEW_SWEEP_WORKFLOW,
            args=(ReviewSweepInput(business_timezone=tz),),
            hours=(REVIEW_SWEEP_HOUR,),
            minute=0,
            timezone=tz,
            catchup_window=timedelta(days=1),
            note="loans due for a post-loan review get their review task (issue 10 §4)",
        ),
        ScheduleDef(
            id="hourly-liquidity-check",
            workflow=LIQUIDITY_CHECK_WORKFLOW,
            args=(daily,),
            hours=tuple(range(24)),
            minute=settings.liquidity_check_minute,
            timezone=tz,
            catchup_window=timedelta(minutes=50),
            note="the funding pool below its warning line: one task a day (issue 9 §5)",
        ),
    ]


async def ensure_schedules(client: Client, settings: Settings) -> dict[str, str]:
    """Create each schedule, or bring an existing one to its declaration (keeping its state: a
    schedule an operator paused stays paused). Returns id → "created" / "updated"."""
    done: dict[str, str] = {}
    for d in department_schedules(settings):
        wanted = d.schedule(settings.temporal_task_queue)
        try:
            await client.create_schedule(d.id, wanted)
            done[d.id] = "created"
        except ScheduleAlreadyRunningError:

            def keep_state(inp: ScheduleUpdateInput, wanted: Schedule = wanted) -> ScheduleUpdate:
                return ScheduleUpdate(
                    schedule=dataclasses.replace(wanted, state=inp.description.schedule.state)
                )

            await client.get_schedule_handle(d.id).update(keep_state)
            done[d.id] = "updated"
    return done


@dataclass(frozen=True)
class ScheduleStatus:
    id: str
    workflow: str
    when: str
    paused: bool
    next_runs: tuple[str, ...]
    recent: tuple[str, ...]
    exists: bool


async def schedule_statuses(client: Client, settings: Settings) -> list[ScheduleStatus]:
    """Each declared schedule as the server has it (``exists`` False when not created yet)."""
    from temporalio.service import RPCError, RPCStatusCode

    out = []
    for d in department_schedules(settings):
        hours = "every hour" if len(d.hours) == 24 else ",".join(f"{h:02d}" for h in d.hours)
        when = f"{hours} at :{d.minute:02d} {d.timezone}"
        try:
            desc = await client.get_schedule_handle(d.id).describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            out.append(ScheduleStatus(d.id, d.workflow, when, False, (), (), exists=False))
            continue
        out.append(
            ScheduleStatus(
                d.id,
                d.workflow,
                when,
                desc.schedule.state.paused,
                tuple(t.isoformat() for t in desc.info.next_action_times[:2]),
                tuple(
                    f"{a.scheduled_at.isoformat()} {getattr(a.action, 'workflow_id', '')}"
                    for a in desc.info.recent_actions[-3:]
                ),
                exists=True,
            )
        )
    return out


async def trigger_schedule(client: Client, settings: Settings, schedule_id: str) -> None:
    """Start the schedule's action now (overlap SKIP still applies); LookupError for an id
    the department does not declare."""
    known = [d.id for d in department_schedules(settings)]
    if schedule_id not in known:
        raise LookupError(f"schedule: {schedule_id!r} is not one of {', '.join(known)}")
    await client.get_schedule_handle(schedule_id).trigger()
