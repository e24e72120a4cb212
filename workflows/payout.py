"""The payout: one bank order, paid at most once (issue 9, seed §3.5).

A child workflow of the loan's origination, id ``payout-<order key>``. It sends the order under
the key (the bank executes one order per key), and follows it until the bank states an outcome:
a verified callback (the API signals ``bank_callback``) or, without one, a status query every
``policy.payout_confirmation_minutes``. A timeout after sending is retried by the activity,
whose retry asks the bank for the key's order before sending again; a crash of the worker is the
same retry. A definitive rejection releases the funding reservation and is returned with the
bank's reason (the origination opens a task with it). A bank still unreachable after the
activity's retries is returned as ``unavailable``: the order may exist, so the key is kept and a
retry sends the same key again.

Deterministic code only.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.payout import PayoutActivities
    from domain.identifiers import BUSINESS_REFUSAL
    from domain.payout import BANK_CALLBACK_SIGNAL, PAYOUT_WORKFLOW, OrderState
    from models.shapes import (
        BankCallback,
        OrderInput,
        OrderOutcome,
        PayoutInput,
        ReleasePayoutInput,
    )
    from workflows.common import (
        DB_WRITE,
        EXTERNAL_HTTP,
        POLL,
        business_refusal,
        with_retry,
    )

# Sending: each try is one request (EXTERNAL_HTTP); a crash is noticed after its
# start_to_close and retried on another worker; after 8 attempts the bank counts as down.
SEND_OPTIONS: dict[str, Any] = with_retry(
    EXTERNAL_HTTP,
    RetryPolicy(
        initial_interval=timedelta(seconds=1),
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=8,
        non_retryable_error_types=[BUSINESS_REFUSAL],
    ),
)
# A status query polls the bank this long (real seconds) before the workflow waits again.
STATUS_WAIT_SECONDS = 5.0


@workflow.defn(name=PAYOUT_WORKFLOW)
class PayoutWorkflow:
    @workflow.init
    def __init__(self, inp: PayoutInput) -> None:
        self._inp = inp
        self._nudged = False
        self._callbacks: set[str] = set()

    @workflow.run
    async def run(self, inp: PayoutInput) -> OrderOutcome:
        outcome = await self._send()
        wait = timedelta(minutes=inp.policy.payout_confirmation_minutes)
        first = True
        while outcome.state in (OrderState.PENDING.value, "missing"):
            if outcome.state == "missing":  # the bank never accepted the key: send it again
                outcome = await self._send()
                continue
            if not first:  # a bank that executes at once answers the first status query
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(lambda: self._nudged, timeout=wait)
            first = False
            self._nudged = False
            # The bank's word on the order, whatever the callback said (callbacks can come
            # twice, late or out of order).
            outcome = await workflow.execute_activity_method(
                PayoutActivities.payment_order_status,
                OrderInput(inp.application_no, inp.order_key, wait_seconds=STATUS_WAIT_SECONDS),
                **POLL,
            )
        if outcome.state == OrderState.REJECTED.value:
            await workflow.execute_activity_method(
                PayoutActivities.release_payout,
                ReleasePayoutInput(
                    inp.application_no,
                    inp.order_key,
                    f"the bank rejected the order: {outcome.reason_code} {outcome.reason or ''}",
                    workflow.now(),
                ),
                **DB_WRITE,
            )
        return outcome

    async def _send(self) -> OrderOutcome:
        inp = self._inp
        try:
            return await workflow.execute_activity_method(
                PayoutActivities.send_payment_order,
                OrderInput(inp.application_no, inp.order_key),
                **SEND_OPTIONS,
            )
        except ActivityError as exc:
            refusal = business_refusal(exc)
            if refusal is not None:
                return OrderOutcome(
                    OrderState.REFUSED.value, inp.order_key, reason="; ".join(refusal.reasons)
                )
            return OrderOutcome(
                OrderState.UNAVAILABLE.value,
                inp.order_key,
                reason=f"the bank could not be reached ({_cause(exc)}); the order key "
                f"{inp.order_key} is kept: retrying sends it again and never pays twice",
            )

    @workflow.signal(name=BANK_CALLBACK_SIGNAL)
    def bank_callback(self, event: BankCallback) -> None:
        """A verified callback about this order: ask the bank now. Duplicates are ignored."""
        if event.order_key != self._inp.order_key or event.event_id in self._callbacks:
            return
        self._callbacks.add(event.event_id)
        self._nudged = True


def _cause(exc: BaseException) -> str:
    """The innermost cause's message (the bank adapter's words)."""
    while getattr(exc, "cause", None) is not None:
        exc = exc.cause  # type: ignore[attr-defined]
    return str(exc)
