"""Determinism: recorded histories of real loans must replay against the current workflow code.

A change that would break running loans fails here; guard it with ``workflow.patched`` and keep
the old histories. Record new ones (after a change that adds behaviour) with
``LOANOPS_RECORD_HISTORIES=1 pytest tests/workflows/test_replay.py``.
"""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from domain.payout import order_key, payout_workflow_id
from loanops.temporal import data_converter
from tests.conftest import System, codec_settings, runs_of
from tests.workflows.driving import confirm_settlement, drive_to, pay, pay_off
from tests.workflows.test_timers import eventually, stage_of
from worker import WORKFLOWS

HISTORIES = Path(__file__).parent / "histories"


def replayer() -> Replayer:
    """Replays with the codec every worker uses: the histories recorded before payloads were
    encrypted pass through its decoding unchanged."""
    return Replayer(workflows=WORKFLOWS, data_converter=data_converter(codec_settings()))


async def _check_and_maybe_record(system: System, application_no: str, name: str) -> None:
    await check_and_maybe_record(system.client, f"loan-{application_no}", name)


async def check_and_maybe_record(client: Client, workflow_id: str, name: str) -> None:
    """Replay every run of ``workflow_id`` on the current code; with LOANOPS_RECORD_HISTORIES
    set, keep them as ``{name}.runN.json`` (a loan's, or a child's: a payout, a collections
    episode). The fast tier's scenarios record here too (their fake activities do not matter
    to a replay)."""
    for i, history in enumerate(await runs_of(client, workflow_id)):
        await replayer().replay_workflow(history)
        if os.environ.get("LOANOPS_RECORD_HISTORIES"):
            path = HISTORIES / f"{name}.run{i}.json"
            await asyncio.to_thread(path.write_text, history.to_json())


async def test_settled_loan_history_replays(sqlite_system: System) -> None:
    system = sqlite_system
    application_no = await system.run_demo()
    await _check_and_maybe_record(system, application_no, "settled_early_repayment")
    # The payout's own workflow (payout-v1): one bank order, followed to its execution.
    await check_and_maybe_record(
        system.client, payout_workflow_id(order_key(application_no, 1)), "payout_executed"
    )


async def test_assessed_loan_history_replays(sqlite_system: System) -> None:
    """A loan started after the intake assessment (workflow.patched "intake-assessment-v1"):
    recorded beside the older histories, which replay without it."""
    application_no = await sqlite_system.run_demo()
    # The first recording (settled_with_assessment) predates the supplement, authority and
    # risk-report patches and stays to prove loans of that time still replay; this one has them.
    await _check_and_maybe_record(sqlite_system, application_no, "settled_with_reviews")


async def test_overdue_then_expired_histories_replay(sqlite_system: System) -> None:
    system = sqlite_system
    servicing = await drive_to(system, "SERVICING")
    await system.env.sleep(timedelta(days=45))  # reminders, overdue, daily penalty refreshes
    offer = await drive_to(system, "OFFER_CONFIRMATION")
    await system.env.sleep(timedelta(days=8))
    await eventually(lambda: stage_of(system, offer) == "EXPIRED", "offer EXPIRED")
    await _check_and_maybe_record(system, servicing, "servicing_overdue")
    await _check_and_maybe_record(system, offer, "offer_expired")


async def test_prepaid_then_paid_off_history_replays(sqlite_system: System) -> None:
    system = sqlite_system
    app_no = await drive_to(system, "SERVICING")
    await system.env.sleep(timedelta(days=10))
    r = await pay(system, app_no, "5000.00", "keep_term", f"p-{app_no}")
    assert r.status_code == 201, r.text
    r = await pay_off(system, app_no, f"q-{app_no}")
    assert r.json()["stage"] == "SERVICING", r.text  # until the settlement is confirmed
    await confirm_settlement(system, app_no)
    await eventually(lambda: stage_of(system, app_no) == "SETTLED", "SETTLED")
    await _check_and_maybe_record(system, app_no, "prepaid_then_paid_off")


def _recorded() -> list[Path]:
    return sorted(HISTORIES.glob("*.json"))


@pytest.mark.parametrize("path", _recorded(), ids=lambda p: p.stem)
async def test_recorded_history_replays_on_current_code(path: Path) -> None:
    text = await asyncio.to_thread(path.read_text)
    history = WorkflowHistory.from_json(f"recorded-{path.stem}", text)
    result = await replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"


def test_histories_are_recorded() -> None:
    """Both workflow types are covered: origination (run0) and servicing (run1 onwards)."""
    assert {p.stem for p in _recorded()} >= {
        "settled_early_repayment.run0",
        "settled_early_repayment.run1",
        "servicing_overdue.run1",
        "offer_expired.run0",
        "prepaid_then_paid_off.run1",
        "settled_with_assessment.run0",
        "settled_with_reviews.run0",
    }


def _patch_ids_in_code() -> set[str]:
    """Every ``workflow.patched(...)`` id the workflows use (a literal or a module constant)."""
    import importlib
    import re

    found: set[str] = set()
    for path in sorted((Path(__file__).parents[2] / "workflows").glob("*.py")):
        module = importlib.import_module(f"workflows.{path.stem}")
        for arg in re.findall(r"workflow\.patched\(\s*([^)]+?)\s*\)", path.read_text()):
            found.add(arg.strip("\"'") if arg[0] in "\"'" else getattr(module, arg))
    return found


def _patch_ids_in(history: Path) -> set[str]:
    import base64
    import json

    ids = set()
    for event in json.loads(history.read_text())["events"]:
        marker = event.get("markerRecordedEventAttributes")
        if marker and marker.get("markerName") == "core_patch":
            for payload in marker["details"]["patch-data"]["payloads"]:
                ids.add(json.loads(base64.b64decode(payload["data"]))["id"])
    return ids


def test_every_patch_is_replayed_both_ways() -> None:
    """Each guarded change is proven by a recorded history that took it (and, being guarded,
    by the older recordings that did not)."""
    in_code = _patch_ids_in_code()
    assert len(in_code) >= 8, in_code
    recorded: set[str] = set()
    for history in _recorded():
        recorded |= _patch_ids_in(history)
    assert in_code <= recorded, f"no recorded history takes {sorted(in_code - recorded)}"
    before = _patch_ids_in(HISTORIES / "settled_with_reviews_before_catalog.run0.json")
    assert "product-catalog-v1" not in before and "lender-seal-v1" not in before
