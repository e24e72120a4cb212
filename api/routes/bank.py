"""The bank's signed callbacks about payment orders (payout-v1): verified, then handed to the
payout workflow of the order's key, which asks the bank for the order's status at once.

The callback is only a nudge: the payout workflow trusts the bank's status query over the
event (events can arrive twice, late, out of order — or be forged, which the signature
refuses). A callback about an order whose payout already finished, or that is not a payout,
is acknowledged (200) so the bank stops retrying; nothing changes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from adapters.bank import BankBadAnswer, CallbackSignatureInvalid, verify_callback
from api.deps import SettingsDep, TemporalDep, TemporalGateway, bank
from domain.payout import BANK_CALLBACK_SIGNAL, payout_workflow_id
from domain.permissions import Action
from models.shapes import BankCallback

router = APIRouter(prefix="/bank", tags=["bank"])


class BankCallbackOut(BaseModel):
    event_id: str
    order_key: str
    # True when a running payout workflow was told; False when none waits for this order.
    delivered: bool


@router.post(
    "/callbacks",
    response_model=BankCallbackOut,
    dependencies=[bank(Action.RECORD_BANK_CALLBACK)],
    responses={401: {"description": "missing, wrong or stale signature"}},
)
async def bank_callback(
    request: Request,
    settings: SettingsDep,
    temporal: TemporalDep,
    x_bank_timestamp: Annotated[str | None, Header()] = None,
    x_bank_signature: Annotated[str | None, Header()] = None,
) -> BankCallbackOut:
    """The bank: ``{event_id, type, order}`` signed with HMAC-SHA256 over
    ``"{X-Bank-Timestamp}.{body}"`` (401 otherwise, nothing changes)."""
    body = await request.body()
    try:
        event = verify_callback(
            settings.bank_callback_secret,
            body,
            timestamp=x_bank_timestamp,
            signature=x_bank_signature,
        )
    except CallbackSignatureInvalid as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail=str(exc)) from None
    except BankBadAnswer as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None
    key = event.order.idempotency_key
    signal = BankCallback(order_key=key, event_id=event.event_id, state=event.order.status)
    delivered = await run_in_threadpool(_nudge, temporal, signal)
    return BankCallbackOut(event_id=event.event_id, order_key=key, delivered=delivered)


def _nudge(temporal: TemporalGateway, signal: BankCallback) -> bool:
    # Payouts' orders, and settled loans' refunds (settlement-refund-v1: domain.refund).
    if not signal.order_key.startswith(("disburse-", "refund-")):
        return False

    async def send(client: Client) -> None:
        handle = client.get_workflow_handle(payout_workflow_id(signal.order_key))
        await handle.signal(BANK_CALLBACK_SIGNAL, signal)

    try:
        temporal.run(send)
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            return False  # the payout already finished (a late or duplicate callback)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail=f"Temporal is unavailable: {exc.message}"
        ) from exc
    return True
