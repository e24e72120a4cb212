"""Throughput end to end: N loans from application to SETTLED by N concurrent HTTP clients (the
demo's own ``DemoDriver`` script, as the demo users), against N bare Temporal loans with the same
activity and update counts (``bench/bare.py``: 31 no-op activities, 12 updates), on the same
Temporal dev server, in interleaved rounds; prints loans/s of each and the ratio last.

    .venv/bin/python bench/throughput.py [--loans N] [--rounds R] [--postgres]

LoanOps runs as ``loanops dev`` does it (a subprocess on free ports and a scratch folder: the
Temporal dev server, the sandboxes, the loans' worker, the render worker, the API), on SQLite by
default or, with ``--postgres``, on a PostgreSQL database of its own (made at
LOANOPS_TEST_PG_DSN as the tests do, migrated and seeded by ``loanops dev``, dropped at the end). The bare
worker runs in this process against the same server. The contract render is counted on the
LoanOps side only (the bare loan renders nothing): the ratio is LoanOps's whole cost.

Last, the decision latency the bots saw (each ``POST /api/v1/tasks/{id}/decision`` timed from
request to answer, over every measured round): p50, p95 and max by task kind and overall.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.worker import Worker

from bench.bare import BARE_UPDATE, BARE_WORKFLOW, UPDATES, BareLoanWorkflow, noop
from loanops.db import make_engine
from loanops.demo import read_sms_from_handset, run_demo
from loanops.processes import wait_for_http, wait_for_port

PROJECT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Stack:
    """``loanops dev`` on free ports in a scratch folder."""

    def __init__(self, var_dir: Path, database_url: str | None) -> None:
        self.ports = {
            name: free_port() for name in ("api", "temporal", "ui", "bureau", "sms", "bank")
        }
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LOANOPS_")} | {
            "LOANOPS_ENVIRONMENT": "development",
            "LOANOPS_SCHEDULES_ENABLED": "false",
            # Every bot borrows as the one demo borrower: the sandbox gateway's limit of 10
            # messages a minute per number (a real gateway's rule) would hold the bots' SMS.
            "LOANOPS_SMS_RATE_LIMIT": "100000",
        }
        self.database_url = database_url or f"sqlite:///{var_dir / 'loanops.db'}"
        self.env["LOANOPS_DATABASE_URL"] = self.database_url
        self.env["LOANOPS_KEY_DIR"] = str(var_dir / "keys")
        # The bots read the borrower's phone number back (the SMS they wait for) with the
        # stack's own keys, not this checkout's var/keys.
        os.environ["LOANOPS_KEY_DIR"] = self.env["LOANOPS_KEY_DIR"]
        self.log = (var_dir / "dev.log").open("wb")
        p = self.ports
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "loanops", "dev", "--var-dir", str(var_dir)]
            + [f"--{n}-port={p[n]}" for n in ("api", "temporal", "ui", "bureau", "sms", "bank")],
            cwd=PROJECT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.api = f"http://127.0.0.1:{p['api']}"
        self.sms = f"http://127.0.0.1:{p['sms']}"
        self.temporal = f"127.0.0.1:{p['temporal']}"

    def wait(self) -> None:
        wait_for_port("127.0.0.1", self.ports["temporal"], timeout=180, process=self.proc)
        wait_for_http(f"{self.api}/healthz", timeout=300, process=self.proc)

    def stop(self) -> None:
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # the supervisor stops its children
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def loanops_batch(
    stack: Stack, n: int, password: str, timings: list[tuple[str, float]] | None = None
) -> float:
    """N loans to SETTLED by N concurrent HTTP bots; the batch's wall time. ``timings``
    receives every decision call's (task kind, seconds from request to answer)."""
    engine = make_engine(stack.database_url)
    errors: list[BaseException] = []

    def one() -> None:
        try:
            with httpx.Client(base_url=stack.api, timeout=120) as client:
                run_demo(
                    client,
                    password=password,
                    say=lambda _line: None,
                    read_sms=functools.partial(read_sms, engine, stack.sms),
                    timings=timings,
                )
        except BaseException as exc:  # reported after the batch
            errors.append(exc)

    start = time.perf_counter()
    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    engine.dispose()
    if errors:
        raise RuntimeError(f"{len(errors)} of {n} LoanOps loans failed: {errors[0]}")
    return elapsed


def read_sms(engine: Engine, sms_url: str, application_no: str, template: str) -> dict[str, str]:
    """What the borrower's phone received (a patient wait: the relay is busy under load)."""
    return read_sms_from_handset(engine, sms_url, application_no, template, timeout=180)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, max(0, math.ceil(q * len(ranked)) - 1))]


def decision_latency(timings: list[tuple[str, float]]) -> list[str]:
    """Lines of p50/p95/max decision latency by task kind, then overall."""
    by_kind: dict[str, list[float]] = {}
    for kind, seconds in timings:
        by_kind.setdefault(kind, []).append(seconds)
    lines = [f"{'decision latency (s)':<32} {'n':>4} {'p50':>7} {'p95':>7} {'max':>7}"]
    rows = [*sorted(by_kind.items()), ("overall", [s for _, s in timings])]
    for kind, values in rows:
        lines.append(
            f"  {kind:<30} {len(values):>4} {percentile(values, 0.5):7.3f} "
            f"{percentile(values, 0.95):7.3f} {max(values):7.3f}"
        )
    return lines


async def bare_batch(client: Client, queue: str, n: int) -> float:
    """N bare loans by N concurrent clients: start, 12 updates each, the result."""

    async def one() -> None:
        handle = await client.start_workflow(
            BARE_WORKFLOW, 0, id=f"bare-{uuid.uuid4()}", task_queue=queue
        )
        for i in range(UPDATES):
            await handle.execute_update(BARE_UPDATE, i, result_type=int)
        assert await handle.result() == "SETTLED"

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return time.perf_counter() - start


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """An empty PostgreSQL database of this run's own, dropped at the end."""
    import psycopg

    admin = os.environ.get("LOANOPS_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"loanops_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    info = psycopg.conninfo.conninfo_to_dict(admin)
    user, host, port = (
        info.get("user", "postgres"),
        info.get("host", "127.0.0.1"),
        info.get("port", 5432),
    )
    try:
        yield f"postgresql+psycopg://{user}@{host}:{port}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def main(args: argparse.Namespace) -> None:
    with contextlib.ExitStack() as resources:
        url = resources.enter_context(postgres_database()) if args.postgres else None
        await measure(args, url)


async def measure(args: argparse.Namespace, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix="loanops-bench-") as tmp:
        stack = Stack(Path(tmp), database_url)
        try:
            stack.wait()
            client = await Client.connect(stack.temporal)
            queue = f"bare-{uuid.uuid4()}"
            password = "demo1234"
            with ThreadPoolExecutor(4) as executor:
                async with Worker(
                    client,
                    task_queue=queue,
                    workflows=[BareLoanWorkflow],
                    activities=[noop],
                    activity_executor=executor,
                ):
                    # Warm-up: one of each (imports, fonts, caches), not counted.
                    await asyncio.to_thread(loanops_batch, stack, 1, password)
                    await bare_batch(client, queue, 1)
                    ours: list[float] = []
                    bare: list[float] = []
                    timings: list[tuple[str, float]] = []
                    for r in range(args.rounds):
                        seen: list[tuple[str, float]] = []
                        t = await asyncio.to_thread(
                            loanops_batch, stack, args.loans, password, seen
                        )
                        timings.extend(seen)
                        for line in decision_latency(seen):  # each round's, in case one fails
                            print(f"round {r + 1}: {line}", flush=True)
                        ours.append(args.loans / t)
                        b = await bare_batch(client, queue, args.loans)
                        bare.append(args.loans / b)
                        print(
                            f"round {r + 1}: LoanOps {ours[-1]:.3f} loans/s ({t:.1f} s), "
                            f"bare {bare[-1]:.3f} loans/s ({b:.1f} s)",
                            flush=True,
                        )
        finally:
            stack.stop()
    db = "PostgreSQL" if database_url else "SQLite"
    o, b = statistics.median(ours), statistics.median(bare)
    print(f"database                 {db}, {args.loans} concurrent loans, {args.rounds} rounds")
    print(f"LoanOps (HTTP bots)      median {o:8.3f} loans/s")
    print(f"bare Temporal loan       median {b:8.3f} loans/s")
    print(f"ratio LoanOps / bare     {o / b:8.3f}")
    for line in decision_latency(timings):
        print(line)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loans", type=int, default=4, help="concurrent loans per batch")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds")
    parser.add_argument("--postgres", action="store_true", help="on PostgreSQL (default SQLite)")
    asyncio.run(main(parser.parse_args()))
