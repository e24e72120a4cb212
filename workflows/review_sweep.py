"""The daily post-loan review sweep (issue 10 §4), started by a Temporal Schedule
(loanops/review_schedule.py): selects the loans due for review (loanops.aftercare.due_reviews),
page by page, and signals each loan's workflow to open its review (REVIEW_SIGNAL; the loan opens
one review per period key, so a sweep run twice asks nothing twice). A loan whose workflow is no
longer running is skipped; nothing in the sweep fails it. Continues as new between pages when
its history grows.

Deterministic code only.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from activities.aftercare import AftercareActivities
    from domain import calendar
    from domain.identifiers import REVIEW_SIGNAL, REVIEW_SWEEP_WORKFLOW, workflow_id
    from models.shapes import DueReviewsInput, ReviewRequest, ReviewSweepInput
    from workflows.common import DB_WRITE

# A run continues as new past this many history events (each loan asked costs about three).
SWEEP_EVENTS_PER_RUN = 2000


@workflow.defn(name=REVIEW_SWEEP_WORKFLOW)
class ReviewSweepWorkflow:
    @workflow.run
    async def run(self, inp: ReviewSweepInput) -> int:
        """Returns how many loans were asked to open a review."""
        as_of = inp.as_of or calendar.business_date(workflow.now(), inp.business_timezone)
        after = inp.after
        requested = inp.requested
        while True:
            page = await workflow.execute_activity_method(
                AftercareActivities.select_due_reviews,
                DueReviewsInput(as_of=as_of, after=after, limit=inp.page_size),
                **DB_WRITE,
            )
            for due in page.due:
                handle = workflow.get_external_workflow_handle(workflow_id(due.application_no))
                try:
                    await handle.signal(REVIEW_SIGNAL, ReviewRequest(due.period_key, due.reason))
                    requested += 1
                except FailureError:
                    workflow.logger.info("loan %s is not running: no review", due.application_no)
            if page.next_after is None:
                return requested
            after = page.next_after
            if workflow.info().get_current_history_length() >= SWEEP_EVENTS_PER_RUN:
                workflow.continue_as_new(
                    ReviewSweepInput(
                        as_of=as_of,
                        after=after,
                        requested=requested,
                        page_size=inp.page_size,
                        business_timezone=inp.business_timezone,
                    )
                )
