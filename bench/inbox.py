"""Inbox and loan-list latency under load, against ``/healthz`` on the same API: p95 of each with
many rows (default 100,000 tasks and 20,000 loans, as issue 13 asks) on PostgreSQL, 20 clients;
the ratio last.

    .venv/bin/python bench/inbox.py [--tasks N] [--loans N] [--clients N] [--requests N]
                                    [--without-indexes]

``--without-indexes`` drops the four indexes of migration 0015_perf after migrating: the
"before" figure of the same run shape.

It makes a PostgreSQL database of its own (LOANOPS_TEST_PG_DSN, as the tests do; dropped at the
end), migrates it (so the 0015_perf indexes are there), bulk-loads the rows (a tenth of the
tasks open, across the roles; the rest done), starts a Temporal dev server (``/healthz`` asks it)
and ``loanops api`` on free ports, then has every client cycle through ``/healthz``, a role's
inbox page, the overseer's inbox page and a loan-list page (cursor-style requests:
``count=false``), and once more the same pages with their counts (the default) for comparison.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psycopg
from sqlalchemy import insert
from sqlmodel import Session

from loanops.db import make_engine
from loanops.migrate import upgrade
from loanops.processes import (
    find_temporal_binary,
    temporal_dev_server_command,
    wait_for_http,
    wait_for_port,
)
from loanops.security import create_access_token
from loanops.seed import seed_demo_users
from models.tables import Application, Borrower, Task

PROJECT = Path(__file__).resolve().parent.parent
PG_ADMIN_DSN = os.environ.get(
    "LOANOPS_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
ROLES = ("operations_specialist", "risk_manager", "product_manager", "business_officer")
INDEXES_0015 = (
    "ix_tasks_inbox",
    "ix_tasks_open_inbox",
    "ix_applications_created",
    "ix_applications_stage_created",
)
STAGES = ("INTAKE_REVIEW", "RISK_REVIEW", "SERVICING", "SETTLED", "REJECTED")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_url(dbname: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(PG_ADMIN_DSN)
    user, host, port = (
        info.get("user", "postgres"),
        info.get("host", "127.0.0.1"),
        info.get("port", 5432),
    )
    return f"postgresql+psycopg://{user}@{host}:{port}/{dbname}"


def load(url: str, n_tasks: int, n_loans: int) -> None:
    rng = random.Random(13)
    t0 = datetime(2026, 1, 5, tzinfo=UTC)
    engine = make_engine(url)
    seed_demo_users(engine, password="bench-only-password")
    with Session(engine) as s:
        borrower = Borrower(
            name="张三丰",
            id_number="110105198805120026",
            phone="13800138000",
            bank_card="6222020200112233446",
            monthly_income=Decimal("18000.00"),
        )
        s.add(borrower)
        s.commit()
        numbers = [f"A2026{i:08d}" for i in range(n_loans)]
        apps = [
            {
                "id": uuid.uuid4(),
                "application_no": no,
                "borrower_id": borrower.id,
                "amount": Decimal("50000.00"),
                "term_months": 6,
                "purpose": "店铺装修",
                "repayment_source": "经营收入",
                "stage": rng.choice(STAGES),
                "submitted_by": "officer",
                "created_at": t0 + timedelta(minutes=i),
                "updated_at": t0 + timedelta(minutes=i),
            }
            for i, no in enumerate(numbers)
        ]
        for i in range(0, len(apps), 5000):
            s.execute(insert(Application.__table__), apps[i : i + 5000])  # type: ignore[attr-defined]
        tasks = [
            {
                "id": uuid.uuid4(),
                "application_no": rng.choice(numbers),
                "kind": "intake_review",
                "candidate_role": rng.choice(ROLES),
                "status": "open" if rng.random() < 0.1 else "done",
                "priority": rng.choice((20, 50, 50, 80)),
                "due_at": t0 + timedelta(minutes=rng.randrange(500_000)),
                "created_at": t0 + timedelta(minutes=rng.randrange(500_000)),
                "escalation_level": 0,
            }
            for _ in range(n_tasks)
        ]
        for i in range(0, len(tasks), 5000):
            s.execute(insert(Task.__table__), tasks[i : i + 5000])  # type: ignore[attr-defined]
        s.commit()
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()


def p95(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=20)[-1]


def main(args: argparse.Namespace) -> None:
    dbname = f"loanops_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    url = pg_url(dbname)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        upgrade(url)
        if args.without_indexes:
            engine = make_engine(url)
            with engine.begin() as conn:
                for index in INDEXES_0015:
                    conn.exec_driver_sql(f"DROP INDEX {index}")
            engine.dispose()
        start = time.perf_counter()
        load(url, args.tasks, args.loans)
        print(
            f"loaded {args.tasks} tasks and {args.loans} loans in "
            f"{time.perf_counter() - start:.0f} s",
            flush=True,
        )
        with tempfile.TemporaryDirectory(prefix="loanops-inbox-") as tmp:
            t_port, ui_port, api_port = free_port(), free_port(), free_port()
            secret = secrets.token_urlsafe(32)
            log = (Path(tmp) / "bench.log").open("wb")
            temporal = subprocess.Popen(
                temporal_dev_server_command(
                    binary=find_temporal_binary(),
                    db_file=Path(tmp) / "temporal.db",
                    port=t_port,
                    ui_port=ui_port,
                ),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            procs.append(temporal)
            wait_for_port("127.0.0.1", t_port, timeout=120, process=temporal)
            env = {k: v for k, v in os.environ.items() if not k.startswith("LOANOPS_")} | {
                "LOANOPS_ENVIRONMENT": "development",
                "LOANOPS_DATABASE_URL": url,
                "LOANOPS_TEMPORAL_ADDRESS": f"127.0.0.1:{t_port}",
                "LOANOPS_SECRET_KEY": secret,
                "LOANOPS_KEY_DIR": str(Path(tmp) / "keys"),
            }
            api = subprocess.Popen(
                [sys.executable, "-m", "loanops", "api", "--port", str(api_port)],
                cwd=PROJECT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            procs.append(api)
            base = f"http://127.0.0.1:{api_port}"
            wait_for_http(f"{base}/healthz", timeout=120, process=api)
            tokens = {
                user: create_access_token(subject=user, roles=[role], secret=secret, minutes=60)
                for user, role in (("risk", "risk_manager"), ("manager", "department_manager"))
            }
            run(base, tokens, args)
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def run(base: str, tokens: dict[str, str], args: argparse.Namespace) -> None:
    risk = {"Authorization": f"Bearer {tokens['risk']}"}
    manager = {"Authorization": f"Bearer {tokens['manager']}"}
    probes = [
        ("/healthz", "/healthz", {}, {}),
        ("inbox (a role)", "/api/v1/tasks", {"count": "false"}, risk),
        ("inbox (overseer)", "/api/v1/tasks", {"count": "false"}, manager),
        ("loan list", "/api/v1/loans", {"count": "false"}, manager),
        ("inbox + count", "/api/v1/tasks", {}, risk),
        ("loan list + count", "/api/v1/loans", {}, manager),
    ]
    times: dict[str, list[float]] = defaultdict(list)
    lock = threading.Lock()
    failures: list[str] = []

    def client(seed: int) -> None:
        order = list(probes)
        random.Random(seed).shuffle(order)
        with httpx.Client(base_url=base, timeout=60) as http:
            for i in range(args.requests):
                for name, path, params, headers in order:
                    if name.endswith("count") and i % 4:  # the counted pages, a quarter as often
                        continue
                    start = time.perf_counter()
                    r = http.get(path, params=params, headers=headers)
                    elapsed = time.perf_counter() - start
                    if r.status_code != 200:
                        failures.append(f"{name}: HTTP {r.status_code} {r.text[:200]}")
                    with lock:
                        times[name].append(elapsed)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, e.g. {failures[0]}")
    health = p95(times["/healthz"])
    indexes = "without" if args.without_indexes else "with"
    print(
        f"{args.clients} clients, {args.tasks} tasks, {args.loans} loans (PostgreSQL), "
        f"{indexes} the 0015_perf indexes"
    )
    for name, *_ in probes:
        xs = times[name]
        print(
            f"{name:<20} p95 {p95(xs) * 1000:8.1f} ms   median {statistics.median(xs) * 1000:8.1f} ms   ({len(xs)} requests)"
        )
    worst = max(p95(times[n]) for n in ("inbox (a role)", "inbox (overseer)", "loan list"))
    print(f"ratio worst inbox/list p95 / healthz p95   {worst / health:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--loans", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=20, help="rounds per client")
    parser.add_argument("--without-indexes", action="store_true", help="the before figure")
    main(parser.parse_args())
