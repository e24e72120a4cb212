"""The sandbox bureau as a real process on a free loopback port, for any test that needs it:
``with sandbox_bureau(tmp_path) as bureau`` gives its ``url`` (for ``HttpCreditBureau``) and
``set_faults("error_503", count=2)`` and the like; the process is stopped on leaving."""

from __future__ import annotations

import os
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


@dataclass
class SandboxBureau:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def set_faults(self, mode: str, **options: Any) -> dict[str, Any]:
        """``mode`` none/timeout/error_500/error_503; ``count=N`` or ``probability=p``,
        ``hang_seconds`` for timeouts."""
        r = httpx.post(f"{self.url}/v1/admin/faults", json={"mode": mode, **options}, timeout=10)
        r.raise_for_status()
        result: dict[str, Any] = r.json()
        return result

    def faults(self) -> dict[str, Any]:
        result: dict[str, Any] = httpx.get(f"{self.url}/v1/admin/faults", timeout=10).json()
        return result

    def enquiries(self) -> dict[str, int]:
        result: dict[str, int] = httpx.get(f"{self.url}/v1/admin/enquiries", timeout=10).json()
        return result


@contextmanager
def sandbox_bureau(
    log_dir: Path, *, latency_ms: tuple[int, int] = (50, 250), seed: int = 0
) -> Iterator[SandboxBureau]:
    port = free_port()
    log = log_dir / f"bureau-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sandbox.bureau",
                "--port",
                str(port),
                "--latency-min-ms",
                str(latency_ms[0]),
                "--latency-max-ms",
                str(latency_ms[1]),
                "--seed",
                str(seed),
            ],
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/healthz", timeout=30, process=proc)
        yield SandboxBureau(url=url, process=proc, log=log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class SandboxSms:
    """The sandbox SMS gateway process: ``url`` (for ``HttpSmsGateway``), faults, the handsets."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path
    secret: str

    def set_faults(self, mode: str, **options: Any) -> dict[str, Any]:
        """``mode`` none/timeout/error_500/error_503/undeliverable; ``count=N`` or
        ``probability=p``, ``hang_seconds`` for timeouts."""
        r = httpx.post(f"{self.url}/v1/admin/faults", json={"mode": mode, **options}, timeout=10)
        r.raise_for_status()
        result: dict[str, Any] = r.json()
        return result

    def received(self, phone: str) -> list[dict[str, Any]]:
        """What the handset of ``phone`` received, newest first."""
        r = httpx.get(f"{self.url}/v1/messages", params={"to": phone}, timeout=10)
        r.raise_for_status()
        messages: list[dict[str, Any]] = r.json()["messages"]
        return messages

    def message(self, message_id: str) -> dict[str, Any]:
        r = httpx.get(f"{self.url}/v1/messages/{message_id}", timeout=10)
        r.raise_for_status()
        result: dict[str, Any] = r.json()
        return result


@contextmanager
def sandbox_sms(
    log_dir: Path,
    *,
    latency_ms: tuple[int, int] = (10, 40),
    rate_limit: int = 10,
    rate_window_s: float = 60,
    receipt_delay_ms: int = 100,
    secret: str = "test-sms-callback-secret",
) -> Iterator[SandboxSms]:
    port = free_port()
    log = log_dir / f"sms-{port}.log"
    env = {**os.environ, "LOANOPS_SMS_CALLBACK_SECRET": secret}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sandbox.sms",
                "--port",
                str(port),
                "--latency-min-ms",
                str(latency_ms[0]),
                "--latency-max-ms",
                str(latency_ms[1]),
                "--rate-limit",
                str(rate_limit),
                "--rate-window-s",
                str(rate_window_s),
                "--receipt-delay-ms",
                str(receipt_delay_ms),
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/healthz", timeout=30, process=proc)
        yield SandboxSms(url=url, process=proc, log=log, secret=secret)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
