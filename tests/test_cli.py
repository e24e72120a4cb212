"""The README's first command for real: ``loanops dev`` brings up Temporal, the worker and the API
as child processes; ``loanops demo`` drives a loan to SETTLED; Ctrl-C stops everything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from loanops.processes import wait_for_http
from tests.conftest import free_port


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_dev_brings_the_system_up_and_demo_settles_a_loan(tmp_path: Path) -> None:
    api, temporal, ui, bureau, sms, bank = (free_port() for _ in range(6))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOANOPS_")}
    env["LOANOPS_ENVIRONMENT"] = "development"
    log = (tmp_path / "dev.log").open("wb")
    dev = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loanops",
            "dev",
            "--api-port",
            str(api),
            "--temporal-port",
            str(temporal),
            "--ui-port",
            str(ui),
            "--bureau-port",
            str(bureau),
            "--sms-port",
            str(sms),
            "--bank-port",
            str(bank),
            "--var-dir",
            str(tmp_path / "var"),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{api}/healthz", timeout=120, process=dev)
        health = httpx.get(f"http://127.0.0.1:{api}/healthz", timeout=10)
        assert (health.status_code, health.json()) == (200, {"status": "ok"}), health.text
        # Ready once the worker polls the task queue.
        wait_for_http(f"http://127.0.0.1:{api}/readyz", timeout=120, process=dev)
        ready = httpx.get(f"http://127.0.0.1:{api}/readyz", timeout=10)
        assert ready.json() == {"status": "ok", "database": "ok", "temporal": "ok", "worker": "ok"}
        assert httpx.get(f"http://127.0.0.1:{ui}/", timeout=10).status_code == 200  # Web UI
        sandbox = httpx.get(f"http://127.0.0.1:{bureau}/healthz", timeout=10)
        assert sandbox.json() == {"status": "ok"}  # the sandbox credit bureau
        gateway = httpx.get(f"http://127.0.0.1:{sms}/healthz", timeout=10)
        assert gateway.json() == {"status": "ok"}  # the sandbox SMS gateway
        bank_health = httpx.get(f"http://127.0.0.1:{bank}/healthz", timeout=10)
        assert bank_health.json() == {"status": "ok"}  # the sandbox bank
        manager = httpx.post(
            f"http://127.0.0.1:{api}/api/v1/auth/token",
            data={"username": "manager", "password": "demo1234"},
            timeout=10,
        ).json()["access_token"]
        pool = httpx.get(
            f"http://127.0.0.1:{api}/api/v1/reports/liquidity",
            headers={"Authorization": f"Bearer {manager}"},
            timeout=10,
        ).json()
        assert pool["balance"] == "5000000.00"  # the demo funding pool's opening balance

        demo = subprocess.run(
            [
                sys.executable,
                "-m",
                "loanops",
                "demo",
                "--api",
                f"http://127.0.0.1:{api}",
                # The outbox says which SMS went out; the borrower reads them on the sandbox
                # gateway's handset.
                "--database-url",
                f"sqlite:///{tmp_path / 'var' / 'loanops.db'}",
                "--sms-url",
                f"http://127.0.0.1:{sms}",
                # The borrower's repayments go through the sandbox bank into the pool's account.
                "--bank-url",
                f"http://127.0.0.1:{bank}",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert demo.returncode == 0, demo.stdout + demo.stderr
        assert "SETTLED" in demo.stderr
        assert (tmp_path / "var" / "loanops.db").exists()
        assert (tmp_path / "var" / "temporal.db").exists()
        assert (tmp_path / "var" / "bank.db").exists()  # the sandbox bank's ledger

        # The worker created the department's schedules when it started.
        at_dev = env | {"LOANOPS_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal}", "COLUMNS": "200"}
        listed = subprocess.run(
            [sys.executable, "-m", "loanops", "schedules", "list"],
            env=at_dev,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listed.returncode == 0, listed.stdout + listed.stderr
        for schedule_id in ("daily-classification", "daily-reconciliation"):
            assert schedule_id in listed.stdout
        assert "not created" not in listed.stdout
        unknown = subprocess.run(
            [sys.executable, "-m", "loanops", "schedules", "trigger", "no-such-schedule"],
            env=at_dev,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert unknown.returncode == 2
        assert "daily-reconciliation" in unknown.stderr  # the refusal lists the known ids
    finally:
        dev.send_signal(signal.SIGINT)
        try:
            code = dev.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(dev.pid, signal.SIGKILL)
            raise
        log.close()
    assert code == 0, (tmp_path / "dev.log").read_text(errors="replace")[-3000:]
    deadline = time.monotonic() + 10
    while not _group_gone(dev.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    for port in (api, temporal, bureau, sms, bank):
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
        except httpx.TransportError:
            continue
        raise AssertionError(f"port {port} still answers after Ctrl-C")


def test_unsafe_production_settings_are_refused_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOANOPS_")}
    env |= {
        "LOANOPS_ENVIRONMENT": "production",
        "LOANOPS_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "loanops", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "LOANOPS_SECRET_KEY" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "x.db").exists()  # nothing was touched
