"""The database stopped mid-run (issue 12, "done when"): N concurrent loans driven from
application to SETTLED by the demo's bots while the PostgreSQL server is stopped for a while and
started again; then the requests by status class and every fen reconciled.

    .venv/bin/python bench/outage.py [--loans 20] [--outage-at 60] [--outage 20]

A private PostgreSQL cluster (``initdb`` / ``pg_ctl`` from the machine's PostgreSQL binaries, in a
scratch folder, on a free port; run as the ``postgres`` user when this runs as root) holds the
database; LoanOps runs as ``loanops dev`` does it (``bench.throughput.Stack``: the Temporal dev
server, the sandboxes, the workers, the API) pointed at it. ``--outage-at`` seconds after the
bots start, the server is stopped (``pg_ctl stop -m fast``: every connection dropped) for
``--outage`` seconds and started again. The bots are clients that behave: a 503 is retried after
its Retry-After, a dropped connection after a second (both counted).

Printed: requests by status class (2xx, 4xx, 503, other 5xx), dropped connections, loans
settled, and the reconciliation of every fen: what the bots paid in (201 answers) against the
payments on record, the installments' ledgers plus the loans' credit, and the bank's incoming
transfers; the disbursements on record against the bank's payouts.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from adapters.bank import HttpBank
from bench.throughput import Stack, free_port
from loanops.db import make_engine
from loanops.demo import read_sms_from_handset, run_demo
from models.tables import Application, Disbursement, Installment, Loan, Payment

PG_BIN_CANDIDATES = ("/usr/lib/postgresql", "/usr/local/pgsql/bin")
POOL_ACCOUNT = "9558800200100000005"
ZERO = Decimal("0.00")


def pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for root in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (root / name).exists():
            return str(root / name)
    raise SystemExit(f"{name} not found: install the PostgreSQL server binaries")


class PgCluster:
    """A PostgreSQL cluster of this run's own in ``root``, trust authentication on 127.0.0.1."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.log = root / "postgres.log"
        self._as: list[str] = []
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            self._as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(root, "postgres")
        self._run(
            pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )

    def _run(self, *argv: str) -> None:
        subprocess.run([*self._as, *argv], check=True, stdout=subprocess.DEVNULL, cwd=self.root)

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root}"
            " -c max_connections=300 -c fsync=off"
        )
        self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-o", options,
                  "start")  # fmt: skip

    def stop(self) -> None:
        self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


class Tally:
    """Every answer the bots got, by status class; dropped connections."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.classes: collections.Counter[str] = collections.Counter()
        self.other_5xx: list[str] = []
        self.dropped: list[str] = []

    def answer(self, request: httpx.Request, status: int, body: str) -> None:
        if status == 503:
            key = "503"
        elif status >= 500:
            key = "other 5xx"
        else:
            key = f"{status // 100}xx"
        with self.lock:
            self.classes[key] += 1
            if key == "other 5xx":
                self.other_5xx.append(f"{request.method} {request.url.path} {status} {body[:300]}")

    def drop(self, request: httpx.Request, exc: Exception) -> None:
        with self.lock:
            self.dropped.append(f"{request.method} {request.url.path}: {type(exc).__name__}")


class PatientTransport(httpx.BaseTransport):
    """A client that behaves: a 503 (or a 409 conflict that says when to try again) is asked
    again after its Retry-After, a connection that drops (or is refused) after a second; every
    answer and every drop is counted."""

    def __init__(self, tally: Tally, patience: float = 300.0) -> None:
        self.inner = httpx.HTTPTransport()
        self.tally = tally
        self.patience = patience

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()  # the body is sent again on a retry
        deadline = time.monotonic() + self.patience
        while True:
            try:
                response = self.inner.handle_request(request)
            except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError) as exc:
                self.tally.drop(request, exc)
                if time.monotonic() > deadline:
                    raise
                time.sleep(1.0)
                continue
            response.read()
            self.tally.answer(request, response.status_code, response.text)
            again = response.status_code in (409, 503) and "Retry-After" in response.headers
            if not again or time.monotonic() > deadline:
                return response
            time.sleep(min(float(response.headers.get("Retry-After", "1")), 10.0))

    def close(self) -> None:
        self.inner.close()


def patient_read_sms(engine: Engine, sms_url: str, application_no: str, template: str) -> Any:
    """The handset read by the bench itself (it looks the message up in the database): waits
    out the outage like the bots do."""
    deadline = time.monotonic() + 600
    while True:
        try:
            return read_sms_from_handset(engine, sms_url, application_no, template, timeout=300)
        except OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def drive(
    stack: Stack, engine: Engine, tally: Tally, results: dict[int, str | BaseException], i: int
) -> None:
    try:
        with httpx.Client(
            base_url=stack.api, timeout=120, transport=PatientTransport(tally)
        ) as client:
            results[i] = run_demo(
                client,
                password="demo1234",
                say=lambda _line: None,
                read_sms=functools.partial(patient_read_sms, engine, stack.sms),
                bank_url=f"http://127.0.0.1:{stack.ports['bank']}",
                pool_account=POOL_ACCOUNT,
                patience=300.0,
            )
    except BaseException as exc:  # reported after the run
        results[i] = exc


def reconcile(engine: Engine, bank_url: str, settled: list[str]) -> list[str]:
    """Every fen of the settled loans: paid in (the payments on record, the bank's incoming
    transfers) against the ledgers (installments + credit); paid out (the disbursements)
    against the bank's payouts. Returns the lines to print (the differences named)."""
    with HttpBank(bank_url) as bank:
        ledger = bank.ledger()
    bank_in: dict[str, Decimal] = collections.defaultdict(lambda: ZERO)
    bank_out: dict[str, Decimal] = {}
    for e in ledger:
        if e.direction == "in" and e.payee_account == POOL_ACCOUNT:
            bank_in[e.reference.split(" ", 1)[0]] += e.amount
        elif e.direction == "out" and e.payer_account == POOL_ACCOUNT:
            bank_out[e.key] = bank_out.get(e.key, ZERO) + e.amount
    lines: list[str] = []
    totals: dict[str, Decimal] = collections.defaultdict(lambda: ZERO)
    differences = 0
    with Session(engine) as s:
        for no in settled:
            payments = s.exec(select(Payment).where(Payment.application_no == no)).all()
            paid = sum((p.amount for p in payments if p.reversed_at is None), ZERO)
            rows = s.exec(select(Installment).where(Installment.application_no == no)).all()
            applied = sum(
                (r.principal_paid + r.interest_paid + r.fee_paid + r.penalty_paid for r in rows),
                ZERO,
            )
            loan = s.exec(select(Loan).where(Loan.application_no == no)).one()
            disbursement = s.exec(
                select(Disbursement).where(Disbursement.application_no == no)
            ).one()
            out = bank_out.get(disbursement.idempotency_key, ZERO)
            totals["paid in (payments)"] += paid
            totals["bank incoming"] += bank_in[no]
            totals["ledgers (installments + credit)"] += applied + loan.credit
            totals["disbursed (records)"] += disbursement.net_amount
            totals["bank payouts"] += out
            if not (paid == bank_in[no] == applied + loan.credit) or out != disbursement.net_amount:
                differences += 1
                lines.append(
                    f"  DIFFERENCE {no}: payments {paid}, bank in {bank_in[no]}, ledger "
                    f"{applied} + credit {loan.credit}; disbursed {disbursement.net_amount}, "
                    f"bank out {out}"
                )
        stuck = s.exec(
            select(Application.application_no, Application.stage).where(
                Application.stage != "SETTLED"
            )
        ).all()
    for name, value in totals.items():
        lines.insert(0, f"  {name:<34} ¥{value:>14,.2f}")
    lines.append(f"  loans with a difference            {differences} of {len(settled)}")
    if stuck:
        lines.append(f"  applications not settled: {', '.join(f'{n} {st}' for n, st in stuck)}")
    return lines


@contextlib.contextmanager
def cluster() -> Iterator[PgCluster]:
    with tempfile.TemporaryDirectory(prefix="loanops-outage-pg-") as tmp:
        pg = PgCluster(Path(tmp))
        pg.start()
        try:
            yield pg
        finally:
            with contextlib.suppress(subprocess.CalledProcessError):
                pg.stop()


def main(args: argparse.Namespace) -> int:
    with cluster() as pg, tempfile.TemporaryDirectory(prefix="loanops-outage-") as var:
        url = pg.create_database("loanops")
        # The bench reads the borrower's phone number (the SMS handset) with the stack's keys.
        os.environ["LOANOPS_KEY_DIR"] = str(Path(var) / "keys")
        stack = Stack(Path(var), url)
        engine = make_engine(url)
        tally = Tally()
        results: dict[int, str | BaseException] = {}
        try:
            stack.wait()
            print(f"stack up (API {stack.api}, PostgreSQL port {pg.port})", flush=True)
            start = time.monotonic()
            bots = [
                threading.Thread(target=drive, args=(stack, engine, tally, results, i))
                for i in range(args.loans)
            ]
            for b in bots:
                b.start()
            time.sleep(args.outage_at)
            pg.stop()
            down_at = time.monotonic() - start
            print(f"database stopped at {down_at:.0f} s", flush=True)
            time.sleep(args.outage)
            pg.start()
            print(f"database started at {time.monotonic() - start:.0f} s", flush=True)
            for b in bots:
                b.join()
            elapsed = time.monotonic() - start
            engine.dispose()  # its pooled connections died with the server
            settled = [r for r in results.values() if isinstance(r, str)]
            failed = [r for r in results.values() if not isinstance(r, str)]
            print(f"loans                    {args.loans} concurrent, {elapsed:.0f} s in all")
            print(f"outage                   database stopped {args.outage} s at {down_at:.0f} s")
            for key in ("2xx", "3xx", "4xx", "503", "other 5xx"):
                print(f"answers {key:<16} {tally.classes.get(key, 0)}")
            print(f"dropped connections      {len(tally.dropped)}")
            for what, times in collections.Counter(tally.dropped).most_common(10):
                print(f"  dropped: {what} ×{times}")
            print(f"loans settled            {len(settled)} of {args.loans}")
            for exc in failed:
                print("  failed: " + "".join(traceback.format_exception_only(exc)).strip()[:400])
            for answer in tally.other_5xx[:20]:
                print(f"  5xx: {answer}")
            print("reconciliation of the settled loans:")
            bank_url = f"http://127.0.0.1:{stack.ports['bank']}"
            for line in reconcile(engine, bank_url, settled):
                print(line)
        finally:
            engine.dispose()
            stack.stop()
            shutil.copy(Path(var) / "dev.log", args.log)
            print(f"the processes' log: {args.log}", flush=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loans", type=int, default=20, help="concurrent loans")
    parser.add_argument("--outage-at", type=float, default=60, help="seconds after the start")
    parser.add_argument("--outage", type=float, default=20, help="seconds the database is down")
    parser.add_argument(
        "--log", default="/tmp/loanops-outage-dev.log", help="where the processes' log is kept"
    )
    sys.exit(main(parser.parse_args()))
