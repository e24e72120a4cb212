"""The sandbox bank as a real process on a free loopback port, with its ledger in a file:
``with sandbox_bank(tmp_path) as bank`` gives its ``url`` (for ``HttpBank``),
``set_faults(reject_next=1)`` and the like, ``reset()`` (empty ledger, no faults), and
``kill()`` / ``restart()`` on the same ledger file; the process is stopped on leaving."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from loanops.processes import wait_for_http
from loanops.settings import PROJECT_ROOT
from tests.conftest import free_port

TEST_SECRET = "test-bank-callback-secret"


@dataclass
class SandboxBank:
    url: str
    port: int
    ledger_file: Path
    log: Path
    secret: str
    argv: list[str]
    process: subprocess.Popen[bytes]

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Replace the faults (omitted ones are off): ``reject_next=2``, ``slow_ms=500``…"""
        r = httpx.post(f"{self.url}/v1/faults", json=faults, timeout=10)
        r.raise_for_status()
        result: dict[str, Any] = r.json()
        return result

    def faults(self) -> dict[str, Any]:
        result: dict[str, Any] = httpx.get(f"{self.url}/v1/faults", timeout=10).json()
        return result

    def reset(self) -> None:
        httpx.post(f"{self.url}/v1/admin/reset", timeout=10).raise_for_status()

    def ledger(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = httpx.get(f"{self.url}/v1/ledger", timeout=10).json()[
            "entries"
        ]
        return entries

    def callbacks(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = httpx.get(f"{self.url}/v1/admin/callbacks", timeout=10).json()[
            "callbacks"
        ]
        return rows

    def kill(self) -> None:
        """SIGKILL: no shutdown of any kind."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def restart(self) -> None:
        """A new process on the same port and ledger file."""
        self.process = _start(self.argv, self.log)
        wait_for_http(f"{self.url}/healthz", timeout=30, process=self.process)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(argv, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT)


@contextmanager
def sandbox_bank(
    work_dir: Path,
    *,
    latency_ms: tuple[int, int] = (5, 20),
    exec_delay_ms: int = 100,
    secret: str = TEST_SECRET,
) -> Iterator[SandboxBank]:
    port = free_port()
    ledger = work_dir / f"bank-{port}.db"
    log = work_dir / f"bank-{port}.log"
    argv = [
        sys.executable,
        "-m",
        "sandbox.bank",
        "--port",
        str(port),
        "--ledger",
        str(ledger),
        "--callback-secret",
        secret,
        "--latency-min-ms",
        str(latency_ms[0]),
        "--latency-max-ms",
        str(latency_ms[1]),
        "--exec-delay-ms",
        str(exec_delay_ms),
    ]
    url = f"http://127.0.0.1:{port}"
    bank = SandboxBank(url, port, ledger, log, secret, argv, _start(argv, log))
    try:
        wait_for_http(f"{url}/healthz", timeout=30, process=bank.process)
        yield bank
    finally:
        bank.stop()
