"""Per-activity timeouts (issue 12 §6): every activity call in workflows/ uses a timeout class of
workflows/common.py that fits what the activity does; the activities of the heartbeat classes
(RENDER, SWEEP, POLL) heartbeat; and a render that hangs without heartbeating is given up after
RENDER's heartbeat_timeout and retried, while one that heartbeats is left to finish."""

from __future__ import annotations

import ast
import asyncio
import importlib
import inspect
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import activities
import workflows
from worker import RENDER_ACTIVITIES
from workflows.common import RENDER, TIMEOUT_CLASSES

HEARTBEAT = re.compile(r"\bbeat\b|activity\.heartbeat\(")


@dataclass(frozen=True)
class Call:
    where: str
    activity: str  # the activity's name (the method's)
    method: Any
    options: dict[str, Any]


def _timeouts(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k not in ("retry_policy", "task_queue")}


def class_of(options: dict[str, Any]) -> str | None:
    """The timeout class ``options`` are (the class itself, or it with its own retry policy)."""
    found = [n for n, c in TIMEOUT_CLASSES.items() if _timeouts(c) == _timeouts(options)]
    return found[0] if len(found) == 1 else None


def activity_calls() -> Iterator[Call]:
    """Every ``execute_activity*`` call written in workflows/*.py, with the options it passes
    (resolved in the module: a module-level dict, or ``on_render_queue`` of one)."""
    for path in sorted(Path(workflows.__file__).parent.glob("*.py")):
        module = importlib.import_module(f"workflows.{path.stem}")
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr.startswith("execute_")
                and "activity" in node.func.attr
            ):
                continue
            where = f"{path.name}:{node.lineno}"
            assert node.func.attr == "execute_activity_method", where
            target = node.args[0]
            assert isinstance(target, ast.Attribute), where
            assert isinstance(target.value, ast.Name), where
            spread = [kw.value for kw in node.keywords if kw.arg is None]
            assert len(spread) == 1, f"{where}: one **options expected"
            expr = spread[0]
            if isinstance(expr, ast.Call):
                assert isinstance(expr.func, ast.Name), where
                assert expr.func.id == "on_render_queue", where
                expr = expr.args[0]
            assert isinstance(expr, ast.Name), where
            method = getattr(getattr(module, target.value.id), target.attr)
            yield Call(where, target.attr, method, getattr(module, expr.id))


def heartbeats(method: Any) -> bool:
    return HEARTBEAT.search(inspect.getsource(method)) is not None


def test_every_activity_call_uses_a_timeout_class() -> None:
    calls = list(activity_calls())
    assert len(calls) > 40  # the walk found the workflows' calls
    unclassified = [c.where for c in calls if class_of(c.options) is None]
    assert unclassified == []


def test_an_activity_has_one_class_wherever_it_is_called() -> None:
    classes: dict[str, set[str | None]] = {}
    for c in activity_calls():
        classes.setdefault(c.activity, set()).add(class_of(c.options))
    assert {name: cs for name, cs in classes.items() if len(cs) != 1} == {}
    # What the activities do decides the class: every render renders, the sweeps sweep.
    assert {name for name, cs in classes.items() if cs == {"RENDER"}} == RENDER_ACTIVITIES | {
        "archive_loan"
    }
    assert {name for name, cs in classes.items() if cs == {"SWEEP"}} == {
        "reclassify_book",
        "take_portfolio_snapshot",
        "reconcile_bank_ledger",
    }
    assert {name for name, cs in classes.items() if cs == {"EXTERNAL_HTTP"}} == {
        "precheck_payout",
        "send_payment_order",
        "send_refund_order",
        "fetch_bureau_report",
    }
    assert {name for name, cs in classes.items() if cs == {"POLL"}} == {"payment_order_status"}


def test_activities_called_with_a_heartbeat_timeout_heartbeat() -> None:
    silent = {
        c.activity
        for c in activity_calls()
        if "heartbeat_timeout" in c.options and not heartbeats(c.method)
    }
    assert silent == set()


def test_activities_that_heartbeat_are_called_with_a_heartbeat_timeout() -> None:
    """A heartbeat with no heartbeat_timeout on the call detects nothing."""
    calls = {c.activity: c for c in activity_calls()}
    beating = set()
    for path in Path(activities.__file__).parent.glob("*.py"):
        module = importlib.import_module(f"activities.{path.stem}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__:
                continue
            for name, fn in inspect.getmembers(cls, inspect.isfunction):
                if hasattr(fn, "__temporal_activity_definition") and heartbeats(fn):
                    beating.add(name)
    assert beating >= {"reclassify_book", "prepare_contract", "payment_order_status"}
    assert {n for n in beating if "heartbeat_timeout" not in calls[n].options} == set()


# ---- on the time-skipping server: a hung render is given up and retried ----------------------


@workflow.defn(sandboxed=False)
class RenderOnce:
    @workflow.run
    async def run(self, name: str) -> str:
        result: str = await workflow.execute_activity(name, "doc", **RENDER)
        return result


@dataclass
class Try:
    attempt: int
    previous_heartbeat: tuple[Any, ...]
    waited: timedelta  # from the activity's scheduling to this try's


def hanging_first_try(tries: list[Try], started: asyncio.Event) -> Any:
    """A render whose first try heartbeats once and then hangs (never heartbeats again, never
    returns); the next try renders."""

    @activity.defn(name="render_risk_report")
    async def render(doc: str) -> str:
        info = activity.info()
        tries.append(
            Try(
                info.attempt,
                tuple(info.heartbeat_details),
                info.current_attempt_scheduled_time - info.scheduled_time,
            )
        )
        if info.attempt == 1:
            activity.heartbeat("loaded")
            started.set()
            await asyncio.Event().wait()
        return f"{doc} rendered by try {info.attempt}"

    return render


async def test_a_hung_render_is_retried_after_its_heartbeat_timeout(
    temporal_env: WorkflowEnvironment,
) -> None:
    queue = f"render-{uuid.uuid4()}"
    tries: list[Try] = []
    started = asyncio.Event()
    async with Worker(
        temporal_env.client,
        task_queue=queue,
        workflows=[RenderOnce],
        activities=[hanging_first_try(tries, started)],
    ):
        handle = await temporal_env.client.start_workflow(
            RenderOnce.run, "render_risk_report", id=f"render-{uuid.uuid4()}", task_queue=queue
        )
        await started.wait()
        # The test server does not skip time while an activity runs: this waits out the real
        # heartbeat timeout (30 s) once; nothing here races the clock.
        assert await handle.result() == "doc rendered by try 2"
    assert [t.attempt for t in tries] == [1, 2]
    # The second try knows what the hung one reported last, and began once the heartbeat
    # timeout had passed, long before the try's start_to_close would have.
    assert tries[1].previous_heartbeat == ("loaded",)
    assert RENDER["heartbeat_timeout"] <= tries[1].waited < RENDER["start_to_close_timeout"]
